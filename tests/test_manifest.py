"""The napari manifest ships inside the package and every command it names imports."""

from __future__ import annotations

import importlib
from importlib.resources import files

import yaml


def test_manifest_is_package_data_and_its_commands_resolve():
    manifest = files("napari_devosam").joinpath("napari.yaml")
    assert manifest.is_file()
    commands = yaml.safe_load(manifest.read_text())["contributions"]["commands"]
    assert commands
    for command in commands:
        module, _, attr = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), command["id"]
