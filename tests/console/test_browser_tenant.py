"""A tenant in a real browser against a real `eais up`: sign in, create, attach to this host, watch InUse appear
without reloading, see the usage chart drawn, detach, release, see the bill; refusals show their EAIS code."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from playwright.sync_api import expect

from eais_cli.local_cluster import VSWITCH, LocalCluster
from tests.console.browser import screenshot
from tests.console.conftest import sign_in
from tests.dataplane.conftest import Eais, free_port

INSTANCE_TYPE = "eais.ei-a6.xlarge"
ROW = "#instances tbody tr[data-instance]"


def test_a_wrong_secret_is_refused_with_its_code_and_the_secret_is_not_kept(page, cluster: LocalCluster, console_url):
    creds = cluster.credentials
    sign_in(page, console_url, creds["AccessKeyId"], "not-the-secret")
    expect(page.locator("#sign-in-error")).to_contain_text("SignatureDoesNotMatch")
    expect(page.locator("input[name=access_key_secret]")).to_have_value("")
    screenshot(page, "01-sign-in-refused")
    sign_in(page, console_url, "LTAI-no-such-key", creds["AccessKeySecret"])
    expect(page.locator("#sign-in-error")).to_contain_text("InvalidAccessKeyId.NotFound")
    assert "eais_console" not in {c["name"] for c in page.context.cookies()}


def test_tenant_creates_attaches_watches_live_detaches_releases_and_sees_the_bill(page, cluster: LocalCluster, console_url):
    creds = cluster.credentials
    sign_in(page, console_url, creds["AccessKeyId"], creds["AccessKeySecret"])
    expect(page).to_have_url(re.compile(r"/console/instances"))
    _session_is_safe(page, creds["AccessKeySecret"])

    instance_id = _create(page, name="console-web")
    row = page.locator(f"{ROW}[data-instance='{instance_id}']")
    expect(row.locator(".badge")).to_have_text("Available")
    page.evaluate("window.__notReloaded = true")
    row.get_by_role("button", name="Attach").click()
    page.select_option("#attach-dialog select[name=ClientInstanceId]", creds["ClientInstanceId"])
    page.click("#attach-dialog button[type=submit]")
    expect(row.locator(".badge")).to_have_text("InUse")
    expect(row).to_contain_text(creds["ClientInstanceId"])
    assert page.evaluate("window.__notReloaded") is True, "the page reloaded instead of updating live"
    screenshot(page, "02-instances-in-use")

    page.click(f"a:text('{instance_id}')")
    expect(page.locator("#instance-status")).to_have_text("InUse")
    cpu_chart = page.locator(".chart-box[data-metric=CpuCoreUsage]")
    expect(cpu_chart.locator("circle.chart-dot").first).to_be_attached(timeout=90_000)
    expect(page.locator("#history")).to_contain_text("attach_ready")
    screenshot(page, "03-instance-with-charts")

    _refused_actions_show_their_code(page)
    page.click("#instance-panel button:text('Detach')")
    expect(page.locator("#instance-status")).to_have_text("Available")

    page.goto(f"{console_url}/instances")
    row.get_by_role("button", name="Release").click()
    expect(page.locator("#release-dialog")).to_contain_text("Force")
    page.click("#release-dialog button[type=submit]")
    expect(row).to_have_count(0)

    page.click("nav a:text('Bill')")
    expect(page.locator("#running-items")).to_contain_text(instance_id)
    assert float(page.inner_text("#running").split()[0]) > 0
    screenshot(page, "04-bill")


def test_a_cross_site_post_is_refused_and_changes_nothing(page, cluster: LocalCluster, console_url):
    creds = cluster.credentials
    sign_in(page, console_url, creds["AccessKeyId"], creds["AccessKeySecret"])
    instance_id = _create(page, name="forgery-target")
    expect(page.locator(f"{ROW}[data-instance='{instance_id}'] .badge")).to_have_text("Available")
    api_port = cluster.controller.api_port
    forged = (f"<form id=f method=post action='http://127.0.0.1:{api_port}/console/api/actions/DeleteEai'>"
              f"<input name=RegionId value=cn-hangzhou><input name=ElasticAcceleratedInstanceId value={instance_id}>"
              "<input name=Force value=true></form><script>document.getElementById('f').submit()</script>")
    with _site_serving(forged) as other_site:  # localhost is another site than 127.0.0.1
        page.goto(other_site)
        expect(page.locator("body")).to_contain_text("IncompleteSignature")
    eais = Eais(creds)
    assert eais.status(instance_id) == "Available"
    eais.delete(instance_id)


def _create(page, *, name: str) -> str:
    page.click("#create-panel summary")
    page.select_option("#create-form select[name=InstanceType]", INSTANCE_TYPE)
    page.fill("#create-form input[name=InstanceName]", name)
    page.fill("#create-form input[name=VSwitchId]", VSWITCH)
    page.fill("#create-form input[name='Tag.1.Key']", "team")
    page.fill("#create-form input[name='Tag.1.Value']", "ml")
    page.click("#create-form button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("CreateEai accepted")
    return page.locator("#notice .mono").inner_text()


def _session_is_safe(page, secret: str) -> None:
    cookie = next(c for c in page.context.cookies() if c["name"] == "eais_console")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console")
    assert 0 < cookie["expires"]  # a persistent cookie that ends with the session, not an endless one
    assert secret not in cookie["value"] and secret not in page.url and secret not in page.content()
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), document.cookie])")
    assert secret not in stored and "eais_console" not in stored  # HttpOnly: scripts cannot read the session


def _refused_actions_show_their_code(page) -> None:
    page.fill("#resource-group-form input[name=ResourceGroupId]", "not-a-group")
    page.click("#resource-group-form button[type=submit]")
    expect(page.locator("#notice.error .code")).to_have_text("InvalidResourceGroup")
    page.fill("#tag-form input[name='Tag.1.Key']", "aliyun-reserved")
    page.click("#tag-form button[type=submit]")
    expect(page.locator("#notice.error .code")).to_have_text("InvalidParameter.TagKey")
    screenshot(page, "05-refused-action")


class _site_serving:
    """Another web site (http://localhost:PORT) serving one page, for the duration of a ``with``."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Page)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://localhost:{self.server.server_port}/"

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
