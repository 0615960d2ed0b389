from clearport.cli.main import app

app(prog_name="clearport")
