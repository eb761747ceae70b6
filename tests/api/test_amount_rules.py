"""Amounts people type (opening balances, top-ups): what is refused, and balances that stay in range."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.accounts import create_account, top_up
from controller.errors import AccountNotFound, InvalidParameter
from controller.money import MAX_AMOUNT, MAX_MICRO, amount_micro, from_micro

BIGINT_MAX = 2**63 - 1


@pytest.mark.parametrize("amount", ["1e309", "-1e309", "1e30", 10**19, "NaN", "sNaN", "Infinity", "-inf", "0.1234567",
                                    "1e-7", "1000000000000.000001", "abc", "", "1,000"])
def test_amounts_that_cannot_be_money_are_an_invalid_parameter(amount):
    with pytest.raises(InvalidParameter) as refused:
        amount_micro(amount, name="Amount")

    assert refused.value.code == "InvalidParameter.Amount" and refused.value.http_status == 400


@pytest.mark.parametrize(("amount", "micro"), [("75.5", 75_500_000), ("-0.000001", -1), ("1E+2", 100_000_000),
                                              (MAX_AMOUNT, MAX_MICRO), (-MAX_AMOUNT, -MAX_MICRO), ("0E-20", 0)])
def test_amounts_within_the_rules_are_kept_to_the_micro_cny(amount, micro):
    assert amount_micro(amount, name="Amount") == micro


@given(amount=st.one_of(st.decimals(), st.integers(), st.text(max_size=40),
                        st.floats().map(repr), st.decimals().map(str)))
def test_any_input_is_either_a_bigint_amount_or_an_invalid_parameter(amount):
    try:
        micro = amount_micro(amount, name="Amount")
    except InvalidParameter as refused:
        assert refused.code == "InvalidParameter.Amount"
    else:
        assert abs(micro) <= MAX_MICRO < BIGINT_MAX
        assert from_micro(micro) == Decimal(amount)


def test_an_opening_balance_out_of_range_creates_nothing(ctx):
    with pytest.raises(InvalidParameter) as refused:
        create_account(ctx, "rich", balance=Decimal("1e13"))

    assert refused.value.code == "InvalidParameter.Balance"
    with pytest.raises(InvalidParameter):  # the name is still free: nothing was written
        create_account(ctx, "rich", balance=Decimal("1e30"))
    assert create_account(ctx, "rich", balance=MAX_AMOUNT).account_id


def test_a_top_up_that_would_take_the_balance_out_of_range_changes_nothing(ctx):
    account_id = create_account(ctx, "near-the-top", balance=MAX_AMOUNT - 1).account_id

    assert top_up(ctx, account_id, Decimal(1)).balance_micro == MAX_MICRO
    with pytest.raises(InvalidParameter) as refused:
        top_up(ctx, account_id, Decimal("0.000001"))

    assert refused.value.code == "InvalidParameter.Amount"
    assert top_up(ctx, account_id, Decimal(0)).balance_micro == MAX_MICRO


def test_a_negative_top_up_corrects_and_may_leave_a_debt_within_range(ctx):
    account_id = create_account(ctx, "corrected", balance=Decimal(10)).account_id

    assert top_up(ctx, account_id, Decimal("-10.5")).balance_micro == -500_000
    with pytest.raises(InvalidParameter):
        top_up(ctx, account_id, -MAX_AMOUNT)


def test_a_top_up_of_an_unknown_account_is_account_not_found(ctx):
    with pytest.raises(AccountNotFound) as refused:
        top_up(ctx, "acc-none", Decimal(1))

    assert (refused.value.code, refused.value.http_status) == ("InvalidAccountId.NotFound", 404)
