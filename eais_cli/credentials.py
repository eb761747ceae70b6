"""Where the CLI's AccessKey, endpoint and region come from: Alibaba Cloud's chain, then the file `eais up` writes.

Keys, first found wins:
1. ``--profile NAME``: that profile of ``~/.aliyun/config.json`` (the `aliyun` CLI's file);
   ``--credentials FILE``: that `eais up` credentials file;
2. ``ALIBABA_CLOUD_ACCESS_KEY_ID`` and ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``;
3. ``~/.aliyun/config.json``: the profile named by ``ALIBABA_CLOUD_PROFILE``, else its ``current`` one;
4. the `eais up` file: ``.eais-up/credentials.json``, else ``.eais-run/credentials.json`` (``make run``).
Endpoint: ``--endpoint`` > ``EAIS_ENDPOINT`` > the `eais up` file's > ``127.0.0.1:8080``.
Region: ``--region`` > ``ALIBABA_CLOUD_REGION_ID`` > the profile's ``region_id`` > the `eais up` file's > cn-hangzhou.
Only AccessKey profiles (``mode`` ``AK``) are supported; anything else is refused with what to do.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

UP_FILES = (Path(".eais-up/credentials.json"), Path(".eais-run/credentials.json"))
DEFAULT_ENDPOINT = "127.0.0.1:8080"
DEFAULT_REGION = "cn-hangzhou"
ENV_ID, ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"


class CredentialsError(Exception):
    """No usable credentials, or a source that is malformed: the message says what to fix."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    endpoint: str
    region_id: str
    source: str  # where the keys came from, for `eais whoami` and error messages
    client_instance_id: str = ""  # this host, when an `eais up` file is at hand
    vswitch_id: str = ""


@dataclass(frozen=True)
class Choices:
    """What the command line says."""

    profile: str = ""
    credentials_file: Path | None = None
    endpoint: str = ""
    region: str = ""


def resolve(choices: Choices, env: dict[str, str] | None = None) -> Credentials:
    env = dict(os.environ) if env is None else env
    up = _up_file(choices.credentials_file)
    keys, source, profile_region = _keys(choices, env, up)
    return Credentials(
        access_key_id=keys[0], access_key_secret=keys[1],
        endpoint=choices.endpoint or env.get("EAIS_ENDPOINT") or up.get("Endpoint") or DEFAULT_ENDPOINT,
        region_id=choices.region or env.get("ALIBABA_CLOUD_REGION_ID") or profile_region or up.get("RegionId")
        or DEFAULT_REGION,
        source=source, client_instance_id=up.get("ClientInstanceId", ""), vswitch_id=up.get("VSwitchId", ""),
    )


def _keys(choices: Choices, env: dict[str, str], up: dict[str, str]) -> tuple[tuple[str, str], str, str]:
    """(id, secret), where they came from, and the region the profile names ("" if none)."""
    if choices.profile:
        return _profile(choices.profile, f"--profile {choices.profile}")
    if choices.credentials_file is not None:
        return _up_keys(up, str(choices.credentials_file)), f"--credentials {choices.credentials_file}", ""
    if env.get(ENV_ID) or env.get(ENV_SECRET):
        if not (env.get(ENV_ID) and env.get(ENV_SECRET)):
            raise CredentialsError(f"only one of {ENV_ID} and {ENV_SECRET} is set; set both, or neither")
        return (env[ENV_ID], env[ENV_SECRET]), "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)", ""
    if config_file().is_file():
        return _profile(env.get("ALIBABA_CLOUD_PROFILE", ""), str(config_file()))
    if up:
        return _up_keys(up, up["__path__"]), up["__path__"], ""
    raise CredentialsError(
        f"no credentials: set {ENV_ID} and {ENV_SECRET}, or configure a profile in ~/.aliyun/config.json "
        "(aliyun configure), or start `eais up` here (it writes .eais-up/credentials.json), or pass --credentials FILE")


def config_file() -> Path:
    return Path.home() / ".aliyun" / "config.json"


def _profile(name: str, source: str) -> tuple[tuple[str, str], str, str]:
    path = config_file()
    try:
        config = json.loads(path.read_text())
    except OSError as error:
        raise CredentialsError(f"cannot read {path}: {error.strerror}; create it with `aliyun configure`") from None
    except ValueError:
        raise CredentialsError(f"{path} is not valid JSON; fix it or create it again with `aliyun configure`") from None
    name = name or config.get("current", "")
    profiles = {p.get("name"): p for p in config.get("profiles", []) if isinstance(p, dict)}
    profile = profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(str(n) for n in profiles)) or "none"
        raise CredentialsError(f"no profile {name!r} in {path} (profiles: {known})")
    if profile.get("mode", "AK") not in ("AK", ""):
        raise CredentialsError(f"profile {name!r} uses mode {profile['mode']!r}; eais supports AccessKey profiles "
                               "(mode AK) only: aliyun configure --mode AK --profile NAME")
    if not profile.get("access_key_id") or not profile.get("access_key_secret"):
        raise CredentialsError(f"profile {name!r} in {path} has no access_key_id and access_key_secret")
    return (profile["access_key_id"], profile["access_key_secret"]), f"profile {name} ({source})", profile.get("region_id", "")


def _up_file(explicit: Path | None) -> dict[str, str]:
    """The `eais up` credentials file (explicit, else the first default found); {} when there is none."""
    candidates = [explicit] if explicit is not None else list(UP_FILES)
    for path in candidates:
        try:
            content = json.loads(path.read_text())
        except OSError as error:
            if explicit is not None:
                raise CredentialsError(f"cannot read {path}: {error.strerror}; start `eais up` first or pass another "
                                       "--credentials FILE") from None
            continue
        except ValueError:
            raise CredentialsError(f"{path} is not valid JSON (it should be the file `eais up` writes)") from None
        return {**{k: str(v) for k, v in content.items()}, "__path__": str(path)}
    return {}


def _up_keys(up: dict[str, str], where: str) -> tuple[str, str]:
    if not up.get("AccessKeyId") or not up.get("AccessKeySecret"):
        raise CredentialsError(f"{where} has no AccessKeyId and AccessKeySecret (it should be the file `eais up` writes)")
    return up["AccessKeyId"], up["AccessKeySecret"]
