"""Lazy attribute exports for package __init__ modules (keeps `import roberta` and the CLI parser cheap)."""
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str], namespace: dict):
    """Return (__getattr__, __dir__) resolving `exports` (public name -> defining module) on first use."""

    def __getattr__(name):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
