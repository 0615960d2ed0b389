"""The rule for free text a caller sends (decision 0011): no C0 control characters, no DEL, no
lone UTF-16 surrogates. The API's request rules and the console's forms both apply it."""

from __future__ import annotations

import re

from clearport.core.errors import Field, InvalidRequest

# C0 controls and DEL (decision 0011), and the UTF-16 surrogates, which JSON's \ud800 escapes can
# produce alone although they are no character at all (UTF-8 cannot encode them).
CONTROLS = "\\u0000-\\u001f\\u007f"
REFUSED_CHARACTERS = re.compile(f"[{CONTROLS}\\ud800-\\udfff]")


def refuse_control_characters(text: str, field: Field) -> None:
    if not REFUSED_CHARACTERS.search(text):
        return
    if not field:  # the whole body is one string: no field to name
        raise InvalidRequest(
            "The request body must be a JSON object without control characters.",
            code="body_invalid",
        )
    raise InvalidRequest(
        "'{field}' must not contain control characters (U+0000 to U+001F, U+007F).",
        field=field,
    )
