"""Monkey-patching that can be undone, and hooks that run when a module is imported.

``autolog()`` must not import a framework just because it is installed (importing
torch or Keras takes seconds), so an integration whose framework is not imported yet
waits in a :class:`PostImportHooks` finder on ``sys.meta_path`` and patches the
framework right after its module has executed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["Autolog", "Patches", "PostImportHooks", "hooks"]


class Patches:
    """Attributes replaced on classes or modules, restored by :meth:`undo`."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, make: Callable[[Any], Any]) -> bool:
        """Replace ``owner.name`` (its own attribute, not an inherited one) by
        ``make(original)``. False when there is nothing to wrap or it is already ours."""
        original = vars(owner).get(name)
        if original is None or getattr(original, "__mltrail_original__", None) is not None:
            return False
        wrapper = make(original)
        try:
            wrapper.__mltrail_original__ = original
        except AttributeError:  # a staticmethod/classmethod object: mark the function
            wrapper.__func__.__mltrail_original__ = original
        setattr(owner, name, wrapper)
        self._saved.append((owner, name, original))
        return True

    def undo(self) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def __bool__(self) -> bool:
        return bool(self._saved)


class Autolog:
    """One integration's autolog state: its options and the patches to undo."""

    def __init__(self) -> None:
        self.patches = Patches()
        self.log_models = True

    def configure(self, options: dict[str, Any]) -> None:
        self.log_models = bool(options.get("log_models", True))

    def wrap_each(self, owners: Sequence[Any], name: str, make: Callable[[Any], Any]) -> None:
        """Wrap ``name`` where each owner defines it (a function re-exported by several
        modules is wrapped in each of them)."""
        for owner in owners:
            if name in vars(owner):
                self.patches.wrap(owner, name, make)

    def undo(self, module_name: str = "") -> None:
        self.patches.undo()


class _HookedLoader(importlib.abc.Loader):
    """Runs the real loader, then the hooks waiting for the module."""

    def __init__(self, loader: Any, on_loaded: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._on_loaded = on_loaded

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._on_loaded(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._loader, name)


class PostImportHooks(importlib.abc.MetaPathFinder):
    """Call ``hook(module)`` once a watched module has been imported (now, if it is)."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[tuple[str, Callable[[ModuleType], None]]]] = {}
        self._busy = threading.local()
        self._lock = threading.Lock()

    def watch(self, owner: str, names: Sequence[str], hook: Callable[[ModuleType], None]) -> None:
        """Run ``hook`` for the first of ``names`` imported (at once if one already is)."""
        for name in names:
            module = sys.modules.get(name)
            if module is not None and getattr(module, "__spec__", None) is not None:
                hook(module)
                return
        with self._lock:
            for name in names:
                self._hooks.setdefault(name, []).append((owner, hook))
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def forget(self, owner: str) -> None:
        """Drop every hook registered by ``owner`` that has not run yet."""
        with self._lock:
            for name in list(self._hooks):
                kept = [(o, h) for o, h in self._hooks[name] if o != owner]
                if kept:
                    self._hooks[name] = kept
                else:
                    del self._hooks[name]
            if not self._hooks and self in sys.meta_path:
                sys.meta_path.remove(self)

    def pending(self) -> set[str]:
        with self._lock:
            return {owner for hooks in self._hooks.values() for owner, _ in hooks}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._hooks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname
        try:  # the spec the rest of sys.meta_path would find
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookedLoader(spec.loader, self._loaded)
        return spec

    def _loaded(self, module: ModuleType) -> None:
        with self._lock:
            waiting = self._hooks.pop(module.__name__, [])
            owners = {owner for owner, _ in waiting}
            for name in list(self._hooks):  # one hook per owner: drop its other names
                self._hooks[name] = [(o, h) for o, h in self._hooks[name] if o not in owners]
                if not self._hooks[name]:
                    del self._hooks[name]
            if not self._hooks and self in sys.meta_path:
                sys.meta_path.remove(self)
        for owner, hook in waiting:
            try:
                hook(module)
            except Exception as exc:  # an integration must never break the user's import
                print(f"mltrail: autolog for {owner} failed: {exc!r}", file=sys.stderr)


hooks = PostImportHooks()
