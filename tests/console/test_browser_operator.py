"""An operator in a real browser: the admin token opens nodes with their slices, client VMs with their agents,
accounts with balances, and the replica leading the reconciler; a wrong token is refused with its code."""

from __future__ import annotations

from playwright.sync_api import expect

from controller.leadership import current_lease
from eais_cli.local_cluster import LocalCluster
from tests.console.browser import screenshot
from tests.console.conftest import sign_in_operator


def test_a_wrong_admin_token_is_refused(page, console_url):
    page.goto(f"{console_url}/operator/nodes")
    page.fill("input[name=admin_token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("InvalidAdminToken")


def test_operator_sees_nodes_slices_agents_accounts_and_the_leader(page, cluster: LocalCluster, console_url):
    creds = cluster.credentials
    sign_in_operator(page, console_url, cluster)
    holder = current_lease(cluster.ctx).holder
    expect(page.locator("#reconciler")).to_contain_text(f"Led by replica {holder}")
    node = page.locator("[data-node]").first
    expect(node.locator(".badge").first).to_have_text("online")
    expect(node).to_contain_text("eais.ei-a6.xlarge")
    screenshot(page, "06-operator-nodes")

    page.click("nav a:text('Client VMs')")
    vm_row = page.locator(f"#vms tr:has-text('{creds['ClientInstanceId']}')")
    expect(vm_row.locator(".badge")).to_have_text("online")
    screenshot(page, "07-operator-vms")

    page.click("nav a:text('Accounts')")
    account_row = page.locator(f"#accounts tr:has-text('{creds['AccountId']}')")
    account_row.locator("input[name=amount]").fill("25.5")
    account_row.get_by_role("button", name="Add").click()
    expect(page.locator(".notice.ok")).to_contain_text("Added 25.5 CNY to default")
    account_row.locator("input[name=amount]").fill("lots")
    account_row.get_by_role("button", name="Add").click()
    expect(page.locator(".notice.error .code")).to_have_text("InvalidParameter.Amount")
    page.go_back()
    screenshot(page, "08-operator-accounts")
