"""Rules about the texts of the bundle: templates, conditions and what they read.

Templates and expression conditions are analysed by :mod:`parlant_runtime.sandbox`,
the same code the runtime compiles them with, so what passes here runs there.
"""

from __future__ import annotations

from collections.abc import Iterator

from parlant_runtime.sandbox import CONTEXT_ROOTS
from parlant_runtime.validation.context import BundleContext, Site, SiteKind
from parlant_runtime.validation.findings import Code, Finding
from parlant_runtime.validation.registry import bundle_rule

__all__: list[str] = []  # rules register themselves; nothing to import from here


def _journey_title(ctx: BundleContext, site: Site) -> str | None:
    return ctx.bundle.journeys[site.journey].title if site.journey is not None else None


def _subject(site: Site) -> str:
    kind = {SiteKind.TEMPLATE: "template", SiteKind.ARGUMENT: "tool argument"}.get(
        site.kind, "condition"
    )
    return f"The {kind} at {site.what}"


def _finding(ctx: BundleContext, code: Code, site: Site, message: str) -> Finding:
    return ctx.finding(
        code, message, site.path, journey=_journey_title(ctx, site), states=site.states
    )


@bundle_rule(Code.INVALID_TEMPLATE)
def check_invalid_template(ctx: BundleContext) -> Iterator[Finding]:
    """Templates must parse, stay inside the sandbox and never show private variables."""
    for site in ctx.checked_sites:
        if site.kind is SiteKind.CONDITION or site.analysis is None:
            continue
        if site.analysis.error is not None:
            yield _finding(
                ctx,
                Code.INVALID_TEMPLATE,
                site,
                f"{_subject(site)} {site.analysis.error}; fix it so it can be sent.",
            )
            continue
        if site.kind is not SiteKind.TEMPLATE:
            continue  # tool arguments may pass private values to the tool
        private = sorted({r.name for r in site.analysis.variables} & ctx.private_variables)
        for name in private:
            yield _finding(
                ctx,
                Code.INVALID_TEMPLATE,
                site,
                f"{_subject(site)} shows private variable {name!r}; private "
                "variables never reach a message, so remove it or make the variable public.",
            )


@bundle_rule(Code.INVALID_CONDITION)
def check_invalid_condition(ctx: BundleContext) -> Iterator[Finding]:
    """Expression conditions must be one expression the sandbox can evaluate."""
    for site in ctx.checked_sites:
        if site.kind is SiteKind.CONDITION and site.analysis and site.analysis.error:
            yield _finding(
                ctx,
                Code.INVALID_CONDITION,
                site,
                f"{_subject(site)} {site.analysis.error}.",
            )


@bundle_rule(Code.UNDEFINED_VARIABLE)
def check_undefined_variable(ctx: BundleContext) -> Iterator[Finding]:
    """What a text reads must be defined by the bundle or part of the turn context."""
    for site in ctx.checked_sites:
        analysis = site.analysis
        if analysis is None or analysis.error is not None:
            continue
        missing = {
            r.name
            for r in analysis.variables
            if not r.guarded and r.name not in ctx.defined_variables
        }
        for name in sorted(missing):
            yield _finding(
                ctx,
                Code.UNDEFINED_VARIABLE,
                site,
                f"{_subject(site)} reads vars.{name}, which nothing defines or sets; declare "
                f"it under `variables`, set it with a tool's `resultVariable`, or guard "
                f"the read with `vars.{name} is defined`.",
            )
        for name in analysis.unknown_names:
            roots = ", ".join(sorted(CONTEXT_ROOTS))
            yield _finding(
                ctx,
                Code.UNDEFINED_VARIABLE,
                site,
                f"{_subject(site)} reads {name!r}, which is not part of the turn context "
                f"({roots}); variables are read as vars.{name}.",
            )


@bundle_rule(Code.DANGLING_REFERENCE)
def check_dangling_text_references(ctx: BundleContext) -> Iterator[Finding]:
    """``tool.<name>`` and ``mentions('<term>')`` must name a declared tool and term."""
    for site in ctx.checked_sites:
        analysis = site.analysis
        if analysis is None or analysis.error is not None:
            continue
        for name in dict.fromkeys(analysis.tools):
            if name not in ctx.tool_names:
                yield _finding(
                    ctx,
                    Code.DANGLING_REFERENCE,
                    site,
                    f"{_subject(site)} reads tool.{name}, but no tool {name!r} is declared; "
                    "fix the name or declare the tool.",
                )
        for term in dict.fromkeys(analysis.terms):
            if term.casefold() not in ctx.term_words:
                yield _finding(
                    ctx,
                    Code.DANGLING_REFERENCE,
                    site,
                    f"{_subject(site)} asks whether the message mentions {term!r}, which is "
                    "neither a glossary term nor a synonym; add it to `terms`.",
                )


@bundle_rule(Code.UNUSED_TOOL)
def check_unused_tool(ctx: BundleContext) -> Iterator[Finding]:
    """A declared tool that nothing calls is dead configuration."""
    used = {tool for guideline in ctx.bundle.guidelines for tool in guideline.tools}
    used.update(ctx.state_tools)
    for index, tool in enumerate(ctx.bundle.tools):
        if tool.name not in used:
            yield ctx.finding(
                Code.UNUSED_TOOL,
                f"Tool {tool.name!r} is used by no state and no guideline; remove it or use it.",
                ("tools", index),
            )
