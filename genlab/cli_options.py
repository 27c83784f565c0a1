"""Options shared by several commands (kept apart from cli.py so command modules can use them)."""

from __future__ import annotations

from typing import Any, Callable

import click


def preset_options(quick_help: str, full_help: str) -> Callable[[Any], Any]:
    """``--quick`` / ``--full`` filling one ``preset`` argument ("quick", "full" or None); both is an error."""

    def remember(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        ctx.params.setdefault("preset", None)
        if not value:
            return
        name = param.name.removesuffix("_preset") if param.name else ""
        if ctx.params["preset"] not in (None, name):
            raise click.UsageError("--quick and --full: give one of them, not both")
        ctx.params["preset"] = name

    def decorate(f: Any) -> Any:
        f = click.option("--full", "full_preset", is_flag=True, expose_value=False, callback=remember, help=full_help)(f)
        return click.option("--quick", "quick_preset", is_flag=True, expose_value=False, callback=remember, help=quick_help)(f)

    return decorate


def threads_option(f: Any) -> Any:
    """``--threads N``: intra-op threads of each genlab process (default: genlab.threads' share)."""
    return click.option("--threads", type=click.IntRange(1, 4096), default=None, metavar="N",
                        help="torch threads per process (default: $OMP_NUM_THREADS, else the CPUs genlab may use "
                             "— affinity and cgroup quota — divided among its worker processes)")(f)


__all__ = ["preset_options", "threads_option"]
