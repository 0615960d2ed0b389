"""ISO 3166-1 alpha-2: the officially assigned country codes, and the one check every country
field goes through (merchants, bank accounts).

The list is data, kept here once: the 249 codes the ISO 3166 Maintenance Agency lists as
officially assigned (as Debian's iso-codes 4.15 ships them). Codes that are only reserved or
user-assigned (`XK`, `EU`, `UK`, `ZZ`, `AA`, `QM` to `QZ`, `XA` to `XZ`) and withdrawn ones
(`AN`, `YU`) are not countries here. A new assignment is a one-line change to `_ASSIGNED`.
"""

from __future__ import annotations

from clearport.core.errors import Field, InvalidRequest

_ASSIGNED = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""

ASSIGNED_COUNTRIES: frozenset[str] = frozenset(_ASSIGNED.split())


def parse_country(value: str, *, field: Field | str = "country") -> str:
    """`value` if it is an officially assigned ISO 3166-1 alpha-2 code (upper case), else a 400
    naming `field`."""
    if value not in ASSIGNED_COUNTRIES:
        raise InvalidRequest(
            "'{field}' must be an assigned ISO 3166-1 alpha-2 country code in upper case "
            "(e.g. US, DE).",
            field=field,
        )
    return value
