"""KnownLogins answers exactly what a dict of user id -> login would, in columns."""

from __future__ import annotations

from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from loyaltybot.points import known as known_module
from loyaltybot.points.known import KnownLogins, LoginBatch, numeric

IDS = st.one_of(
    st.integers(1, 40).map(str),  # Twitch's, few enough to meet again
    st.integers(1, 10**12).map(str),
    st.sampled_from(["0", "007", "u-1", "", "99999999999999999999", "１２"]),  # not plain
)
LOGINS = st.one_of(
    st.from_regex(r"[a-z0-9_]{1,25}", fullmatch=True),
    st.sampled_from(["", "a" * 26, "zoë", "nul\0", "Mixed_Case"]),
)
CHANGES = st.lists(
    st.one_of(
        st.tuples(st.just("set"), IDS, LOGINS),
        st.tuples(st.just("batch"), st.dictionaries(IDS, LOGINS, max_size=30), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(initial=st.dictionaries(IDS, LOGINS, max_size=50), changes=CHANGES,
       probes=st.lists(st.tuples(IDS, LOGINS), max_size=30))
def test_it_answers_as_a_dict_does(
    initial: dict[str, str],
    changes: list[tuple[str, object, object]],
    probes: list[tuple[str, str]],
) -> None:
    with patch.object(known_module, "_FOLD_AT", 4):  # folds and merges, not only the dict
        check_against_a_dict(initial, changes, probes)


def check_against_a_dict(
    initial: dict[str, str],
    changes: list[tuple[str, object, object]],
    probes: list[tuple[str, str]],
) -> None:
    model = dict(initial)
    known = KnownLogins(LoginBatch(initial.items()))
    for kind, a, b in changes:
        if kind == "set":
            assert isinstance(a, str) and isinstance(b, str)
            known[a] = b
            model[a] = b
        else:
            assert isinstance(a, dict)
            known.add_batch(LoginBatch.of(a))
            model.update(a)
    for user_id in {*model, *(u for u, _ in probes)}:
        assert known.get(user_id) == model.get(user_id)
        assert (user_id in known) == (user_id in model)
    assert len(known) == len(model)
    page_ids = [u for u, _ in probes] + list(model)[:10]
    page_logins = [lg for _, lg in probes] + [model[u] for u in list(model)[:10]]
    listed = known.listed(page_ids, page_logins)
    expected = [model.get(u) == lg for u, lg in zip(page_ids, page_logins, strict=True)]
    assert listed.tolist() == expected
    logins = {lg for _, lg in probes}
    assert known.ids_of(logins).tolist() == sorted(
        int(u) for u, lg in model.items() if lg in logins and numeric(u))


def test_single_changes_are_folded_into_the_columns_without_losing_one() -> None:
    known = KnownLogins()
    for i in range(10_000):
        known[str(1_000_000 + i)] = f"viewer{i}"
    known["1000005"] = "renamed"
    assert known.get("1000005") == "renamed"
    assert known.get("1009999") == "viewer9999"
    assert len(known) == 10_000


def test_a_page_of_a_chatter_list_is_answered_in_one_step() -> None:
    known = KnownLogins(LoginBatch((str(10 + i), f"v{i}") for i in range(1000)))
    ids = ["10", "11", "12", "5000", "abc"]
    logins = ["v0", "v1", "renamed", "v4990", "abc"]
    assert known.listed(ids, logins).tolist() == [True, True, False, False, False]


def test_logins_are_found_by_a_scan_for_a_reload() -> None:
    known = KnownLogins(LoginBatch([("10", "alice"), ("11", "bob"), ("12", "carol")]))
    assert sorted(known.ids_of(["bob", "carol", "nobody", "zoë"]).tolist()) == [11, 12]
