"""The stand-in's Airtable formula evaluator: syntax, semantics, pyairtable's output, speed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyairtable import Api
from pyairtable import formulas as fm

from standins.airtable import AirtableStandIn
from standins.airtable.formula import Env, FormulaSyntaxError, compile_formula

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CREATED = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
BASE = "appFormulaTests01"


@dataclass
class Row:
    """A record as formulas see it."""

    fields: dict[str, Any]
    id: str = "recAAAAAAAAAAAAAA"
    created: datetime = CREATED
    modified: datetime = CREATED
    field_times: dict[str, datetime] = field(default_factory=dict)

    def modified_at(self, names: Any) -> datetime:
        if not names:
            return self.modified
        return max(self.field_times.get(name, self.created) for name in names)


ROW = Row(
    {
        "name": "Ana Ruiz",
        "owner": "alice@example.com",
        "sms": "+14155550134",
        "count": 3,
        "opt_out": True,
        "avatar": [{"id": "att1", "url": "https://example.com/a.png", "filename": "a.png"}],
        "tags": ["vip", "es"],
    }
)


def evaluate(text: str, row: Row = ROW) -> Any:
    return compile_formula(text).evaluate(row, Env(NOW))


def matches(text: str, row: Row = ROW) -> bool:
    return compile_formula(text).matches(row, Env(NOW))


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("{name} = 'Ana Ruiz'", True),
        ('{name} = "Ana Ruiz"', True),
        ("{name} = 'ana ruiz'", False),  # text = is case-sensitive
        ("{name} != 'Ana Ruiz'", False),
        ("'Ana Ruiz' = {name}", True),
        ("{missing_field_is_blank} = ''", True),
        ("{missing_field_is_blank} = 0", True),
        ("{missing_field_is_blank} = FALSE()", True),
        ("{missing_field_is_blank}", False),
        ("NOT({missing_field_is_blank})", True),
        ("{opt_out}", True),
        ("{opt_out} = TRUE()", True),
        ("{opt_out} = 1", True),
        ("{count} > 2", True),
        ("{count} >= 3", True),
        ("{count} < 3", False),
        ("{count} <= 3", True),
        ("{count} = '3'", True),
        ("{count} * 2 + 1 = 7", True),
        ("-{count} = -3", True),
        ("({count} - 1) / 2 = 1", True),
        ("1 / 0", False),  # #ERROR! never matches
        ("AND({name} = 'Ana Ruiz', {count} = 3)", True),
        ("AND({name} = 'Ana Ruiz', {count} = 4)", False),
        ("OR({name} = 'x', {count} = 3)", True),
        ("OR({name} = 'x', {count} = 4, {sms} = 'y')", False),
        ("XOR(TRUE(), FALSE())", True),
        ("XOR(TRUE(), TRUE())", False),
        ("not(and(true(), false()))", True),  # function names are case-insensitive
        ("IF({count} > 2, 'big', '')", True),
        ("IF({count} > 5, 'big')", False),
        ("BLANK()", False),
        ("FIND('Ruiz', {name}) = 5", True),
        ("FIND('ruiz', {name}) = 0", True),  # FIND is case-sensitive, 0 when absent
        ("FIND('ana', LOWER({name}))", True),
        ("SEARCH('Ruiz', {name}) = 5", True),
        ("SEARCH('zzz', {name}) = BLANK()", True),  # SEARCH gives BLANK when absent
        ("LEN({name}) = 8", True),
        ("LEFT({name}, 3) = 'Ana'", True),
        ("RIGHT({name}, 4) = 'Ruiz'", True),
        ("MID({name}, 5, 2) = 'Ru'", True),
        ("UPPER({name}) = 'ANA RUIZ'", True),
        ("TRIM('  x  ') = 'x'", True),
        ("SUBSTITUTE({sms}, '+1', '') = '4155550134'", True),
        ("SUBSTITUTE('a-b-c', '-', '+', 2) = 'a-b+c'", True),
        ("CONCATENATE({name}, ' <', {owner}, '>') = 'Ana Ruiz <alice@example.com>'", True),
        ("{name} & '!' = 'Ana Ruiz!'", True),
        ("{count} & '' = '3'", True),
        ("REGEX_MATCH({sms}, '^\\\\+1415')", True),
        ("REGEX_MATCH({sms}, '^\\\\+44')", False),
        ("REGEX_REPLACE({sms}, '[^0-9]', '') = '14155550134'", True),
        ("REGEX_REPLACE('ab-12', '([a-z]+)-(\\\\d+)', '$2$1') = '12ab'", True),
        ("REGEX_EXTRACT({owner}, '[a-z]+') = 'alice'", True),
        ("VALUE('$1,000.50') = 1000.5", True),
        ("T({count}) = ''", True),
        ("T({name}) = 'Ana Ruiz'", True),
        ("RECORD_ID() = 'recAAAAAAAAAAAAAA'", True),
        ("{avatar} = 'a.png (https://example.com/a.png)'", True),
        ("FIND('example.com/a.png', {avatar})", True),
        ("{tags} = 'vip, es'", True),
        ("ARRAYJOIN({tags}, '|') = 'vip|es'", True),
        ("ROUND(2.5, 0) = 3", True),
        ("MOD(7, 3) = 1", True),
        ("MAX(1, {count}, 2) = 3", True),
        ("SWITCH({count}, 1, 'one', 3, 'three', 'many') = 'three'", True),
        ("ISERROR(1/0)", True),
        ("ENCODE_URL_COMPONENT('a b&c') = 'a%20b%26c'", True),
        ("owner = 'alice@example.com'", True),  # a bare single-word field name
    ],
)
def test_formula_semantics(formula: str, expected: bool) -> None:
    assert matches(formula) is expected


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("IS_AFTER(CREATED_TIME(), DATETIME_PARSE('2024-04-30'))", True),
        ("IS_AFTER(CREATED_TIME(), DATETIME_PARSE('2024-05-01T10:00:00.000Z'))", False),  # strict
        ("IS_BEFORE(CREATED_TIME(), '2024-05-01T10:00:00.001Z')", True),
        ("IS_SAME(CREATED_TIME(), '2024-05-01T10:00:00.000Z')", True),
        ("IS_SAME(CREATED_TIME(), DATETIME_PARSE('2024-05-01 23:59'), 'day')", True),
        ("IS_SAME(CREATED_TIME(), DATETIME_PARSE('2024-05-02'), 'days')", False),
        ("IS_SAME(CREATED_TIME(), '2024-05-31', 'month')", True),
        ("CREATED_TIME() = DATETIME_PARSE('2024-05-01T12:00:00+02:00')", True),
        ("CREATED_TIME() < NOW()", True),
        ("LAST_MODIFIED_TIME() = CREATED_TIME()", True),
        ("IS_AFTER(NOW(), DATEADD(CREATED_TIME(), 30, 'days'))", True),
        ("DATETIME_DIFF(NOW(), CREATED_TIME(), 'days') = 31", True),
        ("DATETIME_FORMAT(CREATED_TIME(), 'YYYY-MM-DD') = '2024-05-01'", True),
        ("DATETIME_PARSE('01/05/2024 10:00', 'DD/MM/YYYY HH:mm') = CREATED_TIME()", True),
        ("CREATED_TIME() & '' = '2024-05-01T10:00:00.000Z'", True),
        ("IS_AFTER(CREATED_TIME(), 'not a date')", False),
        ("TODAY() = DATETIME_PARSE('2024-06-01')", True),
    ],
)
def test_date_functions(formula: str, expected: bool) -> None:
    assert matches(formula) is expected


def test_last_modified_time_per_field() -> None:
    edited = datetime(2024, 5, 20, tzinfo=UTC)
    row = Row({"name": "x", "notes": "y"}, modified=edited, field_times={"notes": edited})
    assert evaluate("LAST_MODIFIED_TIME()", row) == edited
    assert evaluate("LAST_MODIFIED_TIME({name})", row) == CREATED
    assert evaluate("LAST_MODIFIED_TIME({name}, {notes})", row) == edited
    assert compile_formula("LAST_MODIFIED_TIME({notes})").fields == {"notes"}


@pytest.mark.parametrize(
    "formula",
    [
        "{name} = ",
        "{name} = 'unterminated",
        "{unterminated = 'x'",
        "AND({a} = 1",
        "NO_SUCH_FUNCTION(1)",
        "NOT(1, 2)",
        "IF(1)",
        "TRUE(1)",
        "{a} == 1",
        "1 2",
        "{a} = 'x')",
        "LAST_MODIFIED_TIME('name')",
        "@",
    ],
)
def test_invalid_formulas_raise(formula: str) -> None:
    with pytest.raises(FormulaSyntaxError):
        compile_formula(formula)


def test_referenced_fields_are_reported() -> None:
    compiled = compile_formula("AND({owner} = 'x', FIND('a', LOWER({name})), RECORD_ID())")
    assert compiled.fields == {"owner", "name"}


HOSTILE = [
    "O'Brien",
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "\\'",
    "brace } close",
    "brace { open",
    "{owner}",
    "line\nbreak",
    "tab\there",
    "') , TRUE()) & ('",
    "' & {owner} & '",
    '") , TRUE()) & ("',
    "x' = 'x",
    "Ünïcödé ✓ 😀",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quoted_values_compare_literally(value: str) -> None:
    formula = fm.to_formula_str(fm.Field("name").eq(value))
    assert matches(formula, Row({"name": value})) is True
    assert matches(formula, Row({"name": value + "x"})) is False
    assert matches(formula, Row({"name": "O'Brien" if value != "O'Brien" else "x"})) is False
    assert matches(fm.to_formula_str(fm.Field("name").ne(value)), Row({"name": value})) is False


@pytest.mark.parametrize("name", ["a}b", "with space", "a\\b", "ünï {x"])
def test_field_names_as_pyairtable_escapes_them(name: str) -> None:
    formula = fm.to_formula_str(fm.match({name: "v"}))
    compiled = compile_formula(formula)
    assert compiled.fields == {name}
    assert compiled.matches(Row({name: "v"}), Env(NOW))


def test_pyairtable_builders_evaluate() -> None:
    row = Row({"name": "Mariana Li", "owner": "alice@example.com", "count": 5, "opt_out": True})
    since = datetime(2024, 4, 1, tzinfo=UTC)
    cases: list[tuple[Any, bool]] = [
        (fm.match({"owner": "alice@example.com", "count": 5}), True),
        (fm.match({"owner": "bob@example.com", "count": 5}, match_any=True), True),
        (fm.match({"count": (">", 4)}), True),
        (fm.match({"count": ("<=", 4)}), False),
        (fm.match({"opt_out": True}), True),
        (fm.match({"opt_out": False}), False),
        (fm.match({"missing": False}), True),  # an empty checkbox equals FALSE()
        (fm.AND(fm.Field("owner").eq("alice@example.com"), fm.NOT(fm.Field("opt_out"))), False),
        (fm.OR(fm.Field("count").gt(10), fm.Field("count").lt(6)), True),
        (fm.Field("count").gte(5) & fm.Field("count").lte(5), True),
        (~fm.Field("name").eq("Mariana Li"), False),
        (fm.FIND(fm.LOWER("ana"), fm.LOWER(fm.Field("name"))), True),
        (fm.SEARCH("Li", fm.Field("name")), True),
        (fm.REGEX_MATCH(fm.Field("name"), "^Mar"), True),
        (fm.EQ(fm.REGEX_REPLACE(fm.Field("name"), " .*", ""), "Mariana"), True),
        (fm.IS_AFTER(fm.LAST_MODIFIED_TIME(), since), True),
        (fm.IS_AFTER(fm.CREATED_TIME(), datetime(2024, 5, 1, 10, 0, tzinfo=UTC)), False),
        (fm.IS_BEFORE(fm.CREATED_TIME(), datetime(2024, 5, 2, tzinfo=UTC).date()), True),
        (fm.IS_SAME(fm.CREATED_TIME(), datetime(2024, 5, 1, 23, 0, tzinfo=UTC), "day"), True),
        (fm.EQ(fm.RECORD_ID(), "recAAAAAAAAAAAAAA"), True),
        (fm.Field("name").eq(fm.CONCATENATE("Mariana", " ", "Li")), True),
        (fm.EQ(fm.LEN(fm.Field("name")), 10), True),
        (fm.EQ(fm.SUBSTITUTE(fm.Field("owner"), "@example.com", ""), "alice"), True),
        (fm.EQ(fm.Field("count"), 5.0), True),
        (fm.IS_AFTER(fm.NOW(), since), True),
    ]
    for built, expected in cases:
        assert matches(fm.to_formula_str(built), row) is expected, str(built)


def test_naive_datetime_is_taken_as_utc() -> None:
    naive = datetime(2024, 5, 1, 10, 0)  # naive on purpose
    assert matches(fm.to_formula_str(fm.IS_SAME(fm.CREATED_TIME(), naive, "second")))
    assert matches(fm.to_formula_str(fm.CREATED_TIME().eq(naive)))


def test_filtering_100k_records_is_fast() -> None:
    rows = [
        Row({"owner": f"rep{i % 1000:04d}@example.com", "name": f"Name {i}"})
        for i in range(100_000)
    ]
    env = Env(NOW)
    mine = fm.Field("owner").eq("rep0007@example.com")
    formula = fm.to_formula_str(fm.AND(mine, fm.FIND("name", fm.LOWER(fm.Field("name")))))
    started = time.perf_counter()
    compiled = compile_formula(formula)
    found = [row for row in rows if compiled.matches(row, env)]
    elapsed = time.perf_counter() - started
    assert len(found) == 100
    assert elapsed < 1.0


# --- over HTTP, through pyairtable -----------------------------------------------------------


@pytest.fixture
def people() -> Iterator[tuple[AirtableStandIn, Any]]:
    with AirtableStandIn(rate_limit_per_second=None) as standin:
        standin.table(BASE, "People", fields=["name", "owner", "brace}field"])
        api = Api("test-token", endpoint_url=standin.url, retry_strategy=None)
        yield standin, api.table(BASE, "People")


def test_hostile_values_match_literally_over_http(people: tuple[AirtableStandIn, Any]) -> None:
    standin, table = people
    rows = standin.table(BASE, "People")
    ids = {value: rows.create({"name": value, "owner": "alice"})["id"] for value in HOSTILE[:-1]}
    rows.create({"name": "bystander", "owner": "alice"})
    for value, record_id in ids.items():
        found = table.all(formula=fm.match({"name": value}))
        assert [r["id"] for r in found] == [record_id], value
        scoped = table.all(
            formula=fm.AND(fm.Field("owner").eq("alice"), fm.Field("name").eq(value))
        )
        assert [r["id"] for r in scoped] == [record_id], value
        others = table.all(formula=fm.Field("name").ne(value))
        assert record_id not in {r["id"] for r in others}
        assert len(others) == len(ids)


def test_field_name_with_brace_over_http(people: tuple[AirtableStandIn, Any]) -> None:
    standin, table = people
    record = standin.table(BASE, "People").create({"brace}field": "v"})
    assert [r["id"] for r in table.all(formula=fm.match({"brace}field": "v"}))] == [record["id"]]


def test_created_time_watermark_over_http(people: tuple[AirtableStandIn, Any]) -> None:
    standin, table = people
    moments = iter([CREATED, CREATED + timedelta(minutes=5)])
    standin.clock = lambda: next(moments)
    rows = standin.table(BASE, "People")
    first = rows.create({"name": "first"})
    second = rows.create({"name": "second"})
    standin.clock = lambda: NOW
    formula = fm.IS_AFTER(fm.CREATED_TIME(), CREATED + timedelta(minutes=1))
    assert [r["id"] for r in table.all(formula=formula)] == [second["id"]]
    assert first["createdTime"] == "2024-05-01T10:00:00.000Z"
