"""``eais-controller`` as a user runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

pytestmark = pytest.mark.sqlite_only


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args], capture_output=True, text=True,
                          check=check, timeout=120)


def test_account_create_prints_keys_once_and_stores_the_secret_sealed(tmp_path):
    db = tmp_path / "c.db"
    made = json.loads(run_cli("account", "create", "--db", f"sqlite:///{db}", "--name", "alice",
                              "--balance", "250", "--real-name-verified").stdout)
    assert set(made) == {"AccountId", "AccessKeyId", "AccessKeySecret"}
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT secret_ciphertext FROM access_keys").fetchone()[0]
    assert made["AccessKeySecret"] not in stored
    assert (tmp_path / ".eais" / "master.key").stat().st_mode & 0o077 == 0


def test_a_second_account_with_the_same_name_is_refused_clearly(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    run_cli("account", "create", "--db", url, "--name", "bob")
    again = run_cli("account", "create", "--db", url, "--name", "bob", check=False)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_bad_balance_is_refused_with_usage_error(tmp_path):
    result = run_cli("account", "create", "--db", f"sqlite:///{tmp_path}/c.db", "--name", "x", "--balance", "lots", check=False)
    assert result.returncode == 2 and "not a number" in result.stderr


def test_placeholder_master_key_stops_start_up(tmp_path):
    result = subprocess.run([sys.executable, "-m", "controller.cli", "account", "list", "--db", f"sqlite:///{tmp_path}/c.db"],
                            capture_output=True, text=True, timeout=60, env={"EAIS_MASTER_KEY": "changeme", "PATH": "/usr/bin"})
    assert result.returncode == 2 and "placeholder" in result.stderr


def test_bill_json_lists_accounts_with_balance(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    made = json.loads(run_cli("account", "create", "--db", url, "--name", "carol", "--balance", "100").stdout)
    report = json.loads(run_cli("bill", "--db", url, "--json", "--close").stdout)
    assert report["Items"] == []
    assert report["Accounts"] == [{"AccountId": made["AccountId"], "Name": "carol", "Balance": "100.000000",
                                   "InDebt": False, "OpenCharges": "0.000000"}]


def test_help_teaches_the_first_steps():
    text = run_cli("--help").stdout
    assert "serve" in text and "account create" in text and "EAIS_" in text


def test_a_different_master_key_is_refused_at_start_up(tmp_path):
    url = f"sqlite:///{tmp_path}/c.db"
    run_cli("account", "create", "--db", url, "--name", "dora")
    result = run_cli("account", "list", "--db", url, "--state-dir", str(tmp_path / "other-state"), check=False)
    assert result.returncode == 1 and "master key" in result.stderr
