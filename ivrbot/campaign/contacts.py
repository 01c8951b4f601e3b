"""Contact lists from CSV: numbers normalised once (E.164), a time zone for each, every bad
row reported with its line number and reason, duplicates merged and reported.

Columns: ``number`` (required), ``name``, ``timezone`` (an IANA zone; else the zone is
found from the number with ``phonenumbers.timezone``); any other column becomes a flow
variable of that contact's call (``call.vars``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as number_zones

from ivrbot.campaign.campaign import CampaignError
from ivrbot.numbers import clean_phone_number

NUMBER_COLUMNS = ("number", "phone", "phone_number")
ZONE_COLUMNS = ("timezone", "tz", "time_zone")


@dataclass
class Contact:
    number: str  # E.164
    name: str = ""
    zone: str = ""
    country: str = ""  # ISO region of the number (holidays)
    vars: dict[str, str] = field(default_factory=dict)
    line: int = 0  # the CSV line it came from


@dataclass
class ImportResult:
    contacts: list[Contact] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    duplicates: list[tuple[int, int]] = field(default_factory=list)  # (line, first line)

    def summary(self) -> str:
        return (
            f"{len(self.contacts)} contacts, {len(self.errors)} bad rows, "
            f"{len(self.duplicates)} duplicates merged"
        )


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=4096)
def zone_of(e164: str) -> str:
    """The time zone of a number ('' when the number maps to none or to several)."""
    zones = [
        z
        for z in number_zones.time_zones_for_number(phonenumbers.parse(e164))
        if z != number_zones.UNKNOWN_TIMEZONE
    ]
    return zones[0] if len(zones) == 1 else ""


def normalise(raw: str, region: str = "US") -> tuple[str, str]:
    """(E.164 number, region) of ``raw`` (ivrbot's number rules first: keypad letters,
    separators); ValueError naming what is wrong."""
    digits = clean_phone_number(raw.strip())
    if not any(ch.isdigit() for ch in raw) or not digits or "@" in digits or not digits.isdigit():
        raise ValueError(f"{raw!r} is not a phone number")
    text = "+" + digits if raw.strip().startswith("+") else digits
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number ({exc})") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{raw!r} has the wrong number of digits for its country")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.region_code_for_number(parsed) or region


def read_contacts(source: Path | str, region: str = "US", zones: bool = True) -> ImportResult:
    """Contacts of a CSV file (a Path) or CSV text (a str); ``zones=False``: numbers only
    (do-not-call lists), no time zone needed."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CampaignError(f"cannot read the contact file {source}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise CampaignError(f"{source}: not UTF-8 text ({exc.reason})") from exc
    else:
        text = source
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    number_col = next((header.index(c) for c in NUMBER_COLUMNS if c in header), None)
    if number_col is None:
        raise CampaignError(
            f"{source if isinstance(source, Path) else 'contacts'}: the first line must name "
            f"the columns, one of them 'number' (got {', '.join(header) or 'nothing'})"
        )
    zone_col = next((header.index(c) for c in ZONE_COLUMNS if c in header), None)
    name_col = header.index("name") if "name" in header else None
    result = ImportResult()
    seen: dict[str, Contact] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            result.errors.append((line, f"{len(row)} columns, the header has {len(header)}"))
            continue
        try:
            contact = _contact(row, header, number_col, zone_col, name_col, region, zones)
        except ValueError as exc:
            result.errors.append((line, str(exc)))
            continue
        contact.line = line
        first = seen.get(contact.number)
        if first is not None:
            result.duplicates.append((line, first.line))
            first.vars = {**contact.vars, **first.vars}
            first.name = first.name or contact.name
            continue
        seen[contact.number] = contact
        result.contacts.append(contact)
    return result


def _contact(
    row: list[str],
    header: list[str],
    number_col: int,
    zone_col: int | None,
    name_col: int | None,
    region: str,
    zones: bool,
) -> Contact:
    raw = row[number_col]
    if not raw.strip():
        raise ValueError("no number")
    number, country = normalise(raw, region)
    zone = row[zone_col].strip() if zone_col is not None else ""
    if zone:
        if zone not in _zones():
            raise ValueError(f"unknown time zone {zone!r} (use an IANA name: America/Chicago)")
    elif zones:
        zone = zone_of(number)
        if not zone:
            raise ValueError(f"cannot tell the time zone of {number}: add a 'timezone' column")
    skip = {number_col, zone_col, name_col}
    variables: dict[str, Any] = {h: row[i] for i, h in enumerate(header) if i not in skip}
    name = row[name_col].strip() if name_col is not None else ""
    return Contact(number, name, zone, country, variables)


def check_zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CampaignError(f"unknown time zone {zone!r}") from exc
