"""Typed settings the way every eais daemon loads them: flags > environment > TOML file > defaults.

A daemon's settings class derives from :class:`LayeredSettings` (its own ``env_prefix`` in
``model_config``) and is loaded once, at start-up, with :func:`load_layered_settings`; a secret is
refused when :func:`is_placeholder` says it is one (``changeme`` and friends), so a copied example
configuration fails at start instead of running with a guessable secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "secret", "password", "xxx", "todo", "placeholder"})
S = TypeVar("S", bound="LayeredSettings")


def is_placeholder(secret: str) -> bool:
    """True for an empty or example value (``changeme``, ``secret`` ...), whatever its case and blanks."""
    return secret.strip().lower() in PLACEHOLDERS


class LayeredSettings(BaseSettings):
    """Constructor arguments (flags) > environment > TOML file (``toml_file`` in ``model_config``) > defaults."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_layered_settings(settings_class: type[S], config_file: Path | None = None, **overrides: Any) -> S:
    """Settings once, at start-up: ``config_file`` is the ``--config`` TOML file; None overrides are flags not given."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")
    if config_file is not None:  # toml_file lives in model_config, so a subclass carries it
        config = SettingsConfigDict(**{**settings_class.model_config, "toml_file": config_file})
        settings_class = type(f"{settings_class.__name__}FromFile", (settings_class,), {"model_config": config})
    return settings_class(**{key: value for key, value in overrides.items() if value is not None})
