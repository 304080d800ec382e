"""Property tests (hypothesis) for source-profile conversion: any payload maps or fails with located errors,
amounts in minor units convert exactly, and value readers round-trip what they read."""

import copy
import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.money import MINOR_UNITS
from apps.mapping.builtin_profiles import builtin_profiles
from apps.mapping.profiles.engine import apply_profile
from apps.mapping.profiles.values import BadValue, as_date, as_datetime, as_number

pytestmark = pytest.mark.fuzz

ON = datetime.date(2026, 3, 31)
PROFILES = {item["name"]: item for item in builtin_profiles()}
BOUNDED = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def leaf_paths(value, path=()):
    """Every path to a leaf of a JSON document, as tuples of keys and indexes."""
    if isinstance(value, dict):
        return [found for key, inner in value.items() for found in leaf_paths(inner, (*path, key))]
    if isinstance(value, list):
        return [found for index, inner in enumerate(value) for found in leaf_paths(inner, (*path, index))]
    return [path]


def replaced(document, path, new):
    copied = copy.deepcopy(document)
    holder = copied
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return copied


def assert_well_formed(result):
    for issue in result.errors:
        assert isinstance(issue.message, str) and issue.message.strip()
    for command in result.commands:
        command.as_dict()  # storable as JSON


@pytest.mark.django_db
@BOUNDED
@given(name=st.sampled_from(sorted(PROFILES)), data=st.data(), new=json_values)
def test_a_sample_with_any_one_value_replaced_maps_or_names_what_is_wrong(name, data, new):
    sample = PROFILES[name]["sample_payload"]
    path = data.draw(st.sampled_from(leaf_paths(sample)))
    result = apply_profile(PROFILES[name]["spec"], replaced(sample, path, new), on=ON)  # never raises
    assert_well_formed(result)


@pytest.mark.django_db
@BOUNDED
@given(name=st.sampled_from(sorted(PROFILES)), payload=json_values)
def test_any_payload_at_all_maps_or_names_what_is_wrong(name, payload):
    assert_well_formed(apply_profile(PROFILES[name]["spec"], payload, on=ON))


@pytest.mark.django_db
@BOUNDED
@given(cents=st.integers(min_value=-(10**15), max_value=10**15), currency=st.sampled_from(sorted(MINOR_UNITS)))
def test_minor_units_convert_exactly_in_every_currency(cents, currency):
    sample = copy.deepcopy(PROFILES["chargebee-invoice-generated"]["sample_payload"])
    sample["content"]["invoice"].update(total=cents, currency_code=currency)
    result = apply_profile(PROFILES["chargebee-invoice-generated"]["spec"], sample, on=ON)
    [command] = [command for command in result.commands if command.type == "invoice.posted"]
    total = command.data["total"]
    assert isinstance(total, Decimal)
    assert total * (10 ** MINOR_UNITS[currency]) == cents
    assert total.as_tuple().exponent == -MINOR_UNITS[currency]


@BOUNDED
@given(seconds=st.integers(min_value=0, max_value=4_102_444_800))
def test_epoch_seconds_read_as_the_same_instant(seconds):
    moment = as_datetime(seconds, {"format": "epoch_s"})
    assert moment == datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    assert as_datetime(seconds * 1000, {"format": "epoch_ms"}) == moment


@BOUNDED
@given(day=st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2999, 12, 31)))
def test_iso_dates_round_trip(day):
    assert as_date(day.isoformat(), {}) == day


@BOUNDED
@given(
    moment=st.datetimes(
        min_value=datetime.datetime(1971, 1, 1), max_value=datetime.datetime(2999, 1, 1), timezones=st.timezones()
    )
)
def test_iso_datetimes_keep_their_instant(moment):
    parsed = as_datetime(moment.isoformat(), {})
    # Compared as instants: Python calls a time in a DST fold unequal to the same instant in another zone
    # (PEP 495), though both name one moment.
    assert parsed.timestamp() == moment.timestamp()


@BOUNDED
@given(number=st.decimals(allow_nan=False, allow_infinity=False))
def test_numbers_written_as_text_read_back_exactly(number):
    assert as_number(str(number)) == number


@BOUNDED
@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_read_as_their_shortest_decimal_never_as_binary_noise(number):
    assert as_number(number) == Decimal(repr(number))


@BOUNDED
@given(value=json_values, value_format=st.sampled_from(["iso", "epoch_s", "epoch_ms", "%d/%m/%Y"]))
def test_reading_any_value_as_a_date_says_why_it_is_not_one(value, value_format):
    try:
        as_date(value, {"format": value_format})
        as_datetime(value, {"format": value_format})
    except BadValue as exc:
        assert exc.message.strip()
