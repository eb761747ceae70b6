"""A Jupyter kernel driven as a browser drives it: started through the server's REST API, code executed over
the kernel's websocket (Jupyter messaging protocol 5.3, JSON text frames), shut down through the REST API."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import websocket


def split_jupyter_url(url: str) -> tuple[str, str]:
    """``http://host:port/?token=T`` -> (``http://host:port/``, ``T``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/", parse_qs(parts.query)["token"][0]


class KernelSession:
    def __init__(self, base_url: str, token: str, timeout_s: float = 120.0) -> None:
        self.base_url, self.token, self.timeout_s = base_url, token, timeout_s
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"token {token}"}, timeout=30)
        answer = self.http.post("api/kernels", json={"name": "python3"})
        answer.raise_for_status()
        self.kernel = answer.json()
        ws_url = base_url.replace("http", "ws", 1) + f"api/kernels/{self.kernel['id']}/channels"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=timeout_s)
        self.session = uuid.uuid4().hex

    def execute(self, code: str) -> tuple[str, dict | None]:
        """(everything printed on stdout, the error content or None)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session, "username": "test",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        printed, error, deadline = [], None, time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream" and content["name"] == "stdout":
                printed.append(content["text"])
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(printed), error
        raise TimeoutError(f"no answer from the kernel within {self.timeout_s} s")

    def close(self) -> None:
        try:
            self.ws.close()
            self.http.delete(f"api/kernels/{self.kernel['id']}")
        except (httpx.HTTPError, OSError):
            pass  # the server may be stopped already
        self.http.close()
