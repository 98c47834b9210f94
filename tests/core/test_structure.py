"""The layout's rules, checked on the import graph drawn from the source (devtools.structure)."""

from devtools import structure

PRODUCTION = ("config.settings.base", "config.settings.prod", "config.urls", "config.wsgi", "config.asgi",
              "config.celery", "config.env")


def _imports_from(prefixes: tuple[str, ...]) -> list[structure.Import]:
    return [imp for imp in structure.imports() if imp.source.startswith(prefixes)]


def _offending(imports, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{imp.source}:{imp.line} imports {imp.target}" for imp in imports
            if imp.target.split(".")[0] in forbidden]


def test_core_imports_no_app_and_no_wiring():
    core = [imp for imp in structure.imports() if imp.source.split(".")[0] == "core"]
    assert core, "the graph found no import in core: the walker is broken"
    assert _offending(core, (*structure.APPS, "config", "bench", "devtools")) == []


def test_settings_import_no_app():
    settings = _imports_from(("config.settings",))
    assert any(imp.target == "config.settings.base" for imp in settings)
    assert _offending(settings, (*structure.APPS, "bench")) == []


def test_production_wiring_imports_neither_bench_nor_devtools():
    wiring = [imp for imp in structure.imports()
              if imp.source in PRODUCTION or imp.source.split(".")[0] in ("core", *structure.APPS)]
    assert _offending(wiring, ("bench", "devtools")) == []


def test_apps_import_only_apps_above_them():
    order = {app: index for index, app in enumerate(structure.APPS)}
    upward = [f"{imp.source}:{imp.line} imports {imp.target}" for imp in structure.imports()
              if imp.source.split(".")[0] in order and imp.target.split(".")[0] in order
              and order[imp.target.split(".")[0]] > order[imp.source.split(".")[0]]]
    assert upward == []


def test_apps_do_not_import_the_wiring():
    apps = [imp for imp in structure.imports() if imp.source.split(".")[0] in structure.APPS]
    assert _offending(apps, ("config",)) == []


def test_no_module_uses_another_modules_private_names():
    assert structure.private_uses() == []


def test_the_drawing_shows_the_layers():
    drawing = structure.mermaid()
    assert "accounts --> core" in drawing
    assert "core --> accounts" not in drawing



def test_cache_lifetimes_are_settings():
    assert structure.cache_lifetimes_outside_settings() == []


def test_imports_sit_at_the_top_unless_a_comment_says_why():
    assert structure.local_imports(("config", "core", *structure.APPS)) == []


def test_receivers_are_connected_in_app_configs_only():
    assert structure.module_level_connects(("config", "core", *structure.APPS)) == []
