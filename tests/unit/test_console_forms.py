"""The console's reading of a form's choice (console/forms.py `choice`)."""

from __future__ import annotations

import pytest

from clearport.console.forms import choice
from clearport.core.errors import InvalidRequest
from clearport.merchants.domain import MerchantStatus
from clearport.reconciliation.domain import Resolution

BY_PEOPLE = (Resolution.ACCEPT, Resolution.ADJUST, Resolution.WRITE_OFF)


def test_a_choice_offered_is_its_member() -> None:
    assert choice({"status": "suspended"}, "status", tuple(MerchantStatus)) is (
        MerchantStatus.SUSPENDED
    )
    assert choice({"action": "write_off"}, "action", BY_PEOPLE) is Resolution.WRITE_OFF


@pytest.mark.parametrize(
    "sent", [{}, {"action": ""}, {"action": "ACCEPT"}, {"action": "matched_late"}]
)
def test_anything_else_is_a_400_naming_the_choices(sent: dict[str, str]) -> None:
    # A member of the enum that the page does not offer (the run's own resolutions) too.
    with pytest.raises(InvalidRequest) as refused:
        choice(sent, "action", BY_PEOPLE)
    assert str(refused.value) == "'action' must be accept, adjust or write_off."
    assert refused.value.field == ("action",)
