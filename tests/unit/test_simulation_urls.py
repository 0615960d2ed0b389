"""The simulation's database URLs: the embedded server's socket directory survives."""

from __future__ import annotations

from clearport.simulation.database import server_url


def test_server_url_replaces_the_database_of_a_tcp_url() -> None:
    assert (
        server_url("postgresql://postgres@127.0.0.1:5432/clearport_ci?sslmode=disable", "sim_1")
        == "postgresql://postgres@127.0.0.1:5432/sim_1?sslmode=disable"
    )


def test_server_url_keeps_an_embedded_servers_socket_directory() -> None:
    # pgserver's URL: the socket directory is a path in the query, after the database.
    url = "postgresql://postgres:@/postgres?host=/tmp/clearport-sim-pg-x1/pgdata"
    assert (
        server_url(url, "sim_1")
        == "postgresql://postgres:@/sim_1?host=/tmp/clearport-sim-pg-x1/pgdata"
    )
