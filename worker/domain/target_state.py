"""The starting state of RegiCRM/RegiTijd (`nmbrs-sync target load FILE`): file format, validation, parsing.

A hand-written YAML or JSON file describes organisations, persons (with contact data, login account and
kenmerken), blue employees, time-writing categories and the local leave settings per CAO. Every item has
a stable key (`ref`, or `code` / `nmbrs_id` where the target store has a natural one) so loading the same
file twice changes nothing.

Models are frozen and reject unknown keys: the file is typed by people, and a typo ("emial_work") must be
an error, not a silently ignored field. `parse_target_file` reports every problem with the file name,
the field path (`persons[3].birthday`) and the line, so a malformed file is rejected as a whole.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from worker.domain.nmbrs_records import Gender

# Kenmerken that grant roles in the other Regi applications (docs/domain.md, "What the sync must do",
# item 10). Every employee gets PERSONEELSLID; the others are chosen per person.
Characteristic = Literal[
    "RegiLoket: Aanvrager",
    "RegiLoket: Uitvoerder",
    "RegiAct: Coordinator",
    "RegiAct: Uitvoerder",
    "RegiAct: Vrijwilliger",
    "RegiAct: Vastlegger prestatie",
    "RegiMaDi: Consulent",
    "RegiMatch: Medewerker",
    "RegiPersoneel: Personeelslid",
]
CHARACTERISTICS: tuple[str, ...] = get_args(Characteristic)
PERSONEELSLID: Characteristic = "RegiPersoneel: Personeelslid"

# A schedule cannot exceed the hours in a week; anything above is a typo.
HOURS_IN_A_WEEK = Decimal(168)

Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Stable key of the item, unique per kind; stored as external_ref so a reload updates "
        "instead of duplicating. Never reuse a ref for another item.",
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=200)]
# Deliberately loose: RegiCRM stores what HR typed; this only catches values that are clearly not e-mail.
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)]
Hours = Annotated[Decimal, Field(ge=0, le=HOURS_IN_A_WEEK, allow_inf_nan=False)]


class TargetItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrganisationState(TargetItem):
    """A RegiCRM organisation (organisatie). Matched to an Nmbrs company by the sync, e.g. by KvK number."""

    ref: Ref
    name: Text
    kvk_number: str | None = Field(
        None, pattern=r"^\d{8}$", description="KvK number: 8 digits, quoted (it may start with 0)."
    )
    email: Email | None = None
    phone: Text | None = None
    postcode: Text | None = None
    website: Text | None = None


class AccountState(TargetItem):
    """The login account of a person: the right person among duplicates is the one with the account."""

    username: Text
    roles: tuple[Text, ...] = Field((), description="Roles and rights granted to the account.")


class PersonState(TargetItem):
    """A RegiCRM person card (persoonskaart) with contact data, optional account and kenmerken."""

    ref: Ref
    first_name: Text | None = None
    initials: Text | None = None
    prefix: Text | None = Field(None, description="Tussenvoegsel, e.g. 'van der'.")
    last_name: Text
    birthday: date | None = Field(None, description="YYYY-MM-DD.")
    gender: Gender | None = None
    email_work: Email | None = None
    email_private: Email | None = None
    phone_work: Text | None = None
    phone_mobile: Text | None = None
    phone_private: Text | None = None
    postcode: Text | None = None
    organisation: Ref | None = Field(None, description="ref of the person's organisation in this file.")
    account: AccountState | None = Field(None, description="Login account; none when omitted.")
    characteristics: tuple[Characteristic, ...] = Field(
        (), description="Kenmerken, set exactly as listed (others of this person are removed)."
    )

    @model_validator(mode="after")
    def _characteristics_once(self) -> PersonState:
        repeated = sorted({c for c in self.characteristics if self.characteristics.count(c) > 1})
        if repeated:
            raise ValueError(f"characteristics listed more than once: {', '.join(repeated)}")
        return self


class BlueEmployeeState(TargetItem):
    """A "blue" RegiTijd employee: entered by hand, not from Nmbrs, never changed by the sync."""

    ref: Ref
    person: Ref = Field(description="ref of the person in this file.")
    organisation: Ref = Field(description="ref of the organisation (the company they work for).")
    number: Text | None = Field(None, description="Employee number in RegiTijd, quoted.")
    employment_start: date = Field(description="YYYY-MM-DD.")
    employment_end: date | None = Field(None, description="Last employed day; none = still employed.")
    hours_per_week: Hours | None = Field(None, description="Schedule from employment_start.")

    @model_validator(mode="after")
    def _end_not_before_start(self) -> BlueEmployeeState:
        if self.employment_end is not None and self.employment_end < self.employment_start:
            raise ValueError(f"employment_end {self.employment_end} is before employment_start {self.employment_start}")
        return self


class TimeCategoryState(TargetItem):
    """A time-writing category (tijdschrijfrubriek); its code is the stable key."""

    code: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^\S+$")]
    name: Text


class LabourAgreementState(TargetItem):
    """Local leave settings of a CAO (extra-statutory leave is configured per CAO, docs/domain.md)."""

    nmbrs_id: int = Field(ge=1, description="The CAO's id in Nmbrs: the stable key.")
    number: Text | None = Field(None, description="CAO number as in Nmbrs, quoted.")
    description: Text
    extra_leave_hours_fulltime: Annotated[Decimal, Field(ge=0, le=2000, allow_inf_nan=False)] = Field(
        Decimal(0), description="Extra-statutory leave hours per year at full time."
    )
    fulltime_hours_per_week: Annotated[Decimal, Field(gt=0, le=HOURS_IN_A_WEEK, allow_inf_nan=False)] = Field(
        Decimal(40), description="Hours per week that count as full time for this CAO."
    )


class TargetState(TargetItem):
    """The starting state of RegiCRM/RegiTijd loaded by `nmbrs-sync target load FILE` (YAML or JSON)."""

    organisations: tuple[OrganisationState, ...] = ()
    persons: tuple[PersonState, ...] = ()
    blue_employees: tuple[BlueEmployeeState, ...] = ()
    time_categories: tuple[TimeCategoryState, ...] = ()
    labour_agreements: tuple[LabourAgreementState, ...] = ()

    @model_validator(mode="after")
    def _references_resolve(self) -> TargetState:
        problems = cross_reference_problems(self)
        if problems:
            raise CrossReferenceError(tuple(problems))
        return self


# --------------------------------------------------------------------------------------------------
# Problems and errors
# --------------------------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a target file: where (field path, line when known) and what."""

    loc: Loc
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        """`persons[3].birthday`; `(top level)` for the document itself."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(top level)"


class CrossReferenceError(ValueError):
    """Raised inside TargetState validation; keeps each problem's location so lines can be reported."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems


class TargetFileError(Exception):
    """A target file that cannot be loaded; the message lists every problem as `file:line: path: what`."""

    def __init__(self, filename: str, problems: Sequence[Problem]) -> None:
        self.filename = filename
        # In file order, so the list reads top to bottom; problems without a line come last.
        self.problems = tuple(sorted(problems, key=lambda p: p.line if p.line is not None else 1 << 31))
        lines = [f"  {filename}{'' if p.line is None else f':{p.line}'}: {p.path}: {p.message}" for p in self.problems]
        count = len(self.problems)
        super().__init__(
            f"{filename} is not a valid target state ({count} problem{'s' if count != 1 else ''}), "
            "nothing was loaded:\n" + "\n".join(lines)
        )


def cross_reference_problems(state: TargetState) -> list[Problem]:
    """Keys unique per kind, usernames unique, every ref pointing at an item of this file."""
    problems = [
        *_duplicates("organisations", "ref", [o.ref for o in state.organisations]),
        *_duplicates("persons", "ref", [p.ref for p in state.persons]),
        *_duplicates("blue_employees", "ref", [b.ref for b in state.blue_employees]),
        *_duplicates("time_categories", "code", [c.code for c in state.time_categories]),
        *_duplicates("labour_agreements", "nmbrs_id", [a.nmbrs_id for a in state.labour_agreements]),
    ]
    # Case-insensitive: people log in as "J.Jansen" and "j.jansen" alike.
    seen_usernames: dict[str, int] = {}
    for index, person in enumerate(state.persons):
        if person.account is None:
            continue
        username = person.account.username.casefold()
        if username in seen_usernames:
            problems.append(
                Problem(
                    ("persons", index, "account", "username"),
                    f"username '{person.account.username}' is already used by persons[{seen_usernames[username]}]",
                )
            )
        else:
            seen_usernames[username] = index

    organisations = {o.ref for o in state.organisations}
    persons = {p.ref for p in state.persons}
    for index, person in enumerate(state.persons):
        if person.organisation is not None and person.organisation not in organisations:
            problems.append(
                Problem(("persons", index, "organisation"), f"unknown organisation '{person.organisation}'")
            )
    # Blue employees are found again by person and company (rt_employees has no external_ref), so one
    # person can have only one blue employment per organisation.
    seen_pairs: dict[tuple[str, str], int] = {}
    for index, blue in enumerate(state.blue_employees):
        if blue.person not in persons:
            problems.append(Problem(("blue_employees", index, "person"), f"unknown person '{blue.person}'"))
        if blue.organisation not in organisations:
            problems.append(
                Problem(("blue_employees", index, "organisation"), f"unknown organisation '{blue.organisation}'")
            )
        pair = (blue.person, blue.organisation)
        if pair in seen_pairs:
            problems.append(
                Problem(
                    ("blue_employees", index),
                    f"person '{blue.person}' already has a blue employment at '{blue.organisation}' "
                    f"(blue_employees[{seen_pairs[pair]}])",
                )
            )
        else:
            seen_pairs[pair] = index
    return problems


def _duplicates(kind: str, field: str, keys: Sequence[str | int]) -> Iterator[Problem]:
    first: dict[str | int, int] = {}
    for index, key in enumerate(keys):
        if key in first:
            yield Problem((kind, index, field), f"duplicate {field} '{key}' (first used by {kind}[{first[key]}])")
        else:
            first[key] = index


# --------------------------------------------------------------------------------------------------
# Parsing with line numbers
# --------------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: `1976-13-07` must reach pydantic as text, to be reported
    with its field and line, instead of failing inside PyYAML's date constructor without either."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_target_file(text: str, filename: str) -> TargetState:
    """Validate a target file's text; `.json` files are read as JSON, anything else as YAML.

    Raises TargetFileError naming the file, the field path and the line of every problem."""
    is_json = filename.lower().endswith(".json")
    try:
        if is_json:
            data = json.loads(text)
            # JSON is YAML for positions only; tabs (legal JSON whitespace, illegal YAML indentation)
            # cannot occur inside valid JSON strings, so replacing them keeps every line number.
            root = _compose(text.replace("\t", " "))
        else:
            root, data = _load_yaml(text)
    except json.JSONDecodeError as error:
        raise TargetFileError(
            filename, [Problem((), f"not valid JSON: {error.msg} (column {error.colno})", error.lineno)]
        ) from None
    except yaml.YAMLError as error:
        raise TargetFileError(filename, [_yaml_problem(error)]) from None

    problems = list(_duplicate_keys(root, ())) if root is not None else []
    if data is None:
        problems.append(Problem((), "the file is empty", 1))
    if problems:
        raise TargetFileError(filename, problems)
    try:
        return TargetState.model_validate(data)
    except ValidationError as error:
        raise TargetFileError(filename, _located(error.errors(), root)) from None


def _load_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        return root, (None if root is None else loader.construct_document(root))
    finally:
        loader.dispose()


def _compose(text: str) -> yaml.Node | None:
    """The node tree for line numbers; None when the text is valid JSON but not YAML (rare escapes)."""
    try:
        return _load_yaml(text)[0]
    except yaml.YAMLError:
        return None


def _yaml_problem(error: yaml.YAMLError) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        what = " ".join(part for part in (error.context, error.problem) if part)
        return Problem((), f"not valid YAML: {what}", None if mark is None else mark.line + 1)
    return Problem((), f"not valid YAML: {error}")


def _duplicate_keys(node: yaml.Node, loc: Loc) -> Iterator[Problem]:
    """Repeated keys: both YAML and JSON keep the last one silently, which hides a typo."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    yield Problem(
                        (*loc, key.value),
                        f"key given twice (also on line {seen[key.value]})",
                        key.start_mark.line + 1,
                    )
                seen[key.value] = key.start_mark.line + 1
                yield from _duplicate_keys(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index))


def _located(errors: list[ErrorDetails], root: yaml.Node | None) -> list[Problem]:
    problems: list[Problem] = []
    for error in errors:
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, CrossReferenceError):
            problems.extend(replace(p, line=_line_of(root, p.loc)) for p in cause.problems)
            continue
        loc = tuple(error["loc"])
        problems.append(Problem(loc, _message(error), _line_of(root, loc)))
    return problems


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling; see schemas/ for the format)"
    if error["type"] == "string_type" and isinstance(error["input"], int | float):
        return f"{error['msg']}: quote it ('{error['input']}'), numbers with meaning as text stay text"
    return error["msg"]


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """The line of the deepest node of `loc` present in the file: the key line for a mapping entry, the
    item line for a list item (a missing field points at its item)."""
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            # The last occurrence, as the loader keeps the last value of a repeated key.
            entry = next(
                (
                    (key, value)
                    for key, value in reversed(node.value)
                    if isinstance(key, yaml.ScalarNode) and key.value == part
                ),
                None,
            )
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            # Pydantic adds union-member tags to some locs; the deepest match so far is the answer.
            break
    return line
