"""Human-readable renderings of a validation report: the terminal and markdown (Prefect UI)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from tracealign.validation.runner import ValidationReport


def print_report(report: ValidationReport, console: Console | None = None) -> None:
    console = console or Console(stderr=not report.success, soft_wrap=True)
    rows = sum(report.rows.values())
    if report.success:
        console.print(
            f"[green]valid[/green]: {report.data_dir} — {report.expectations} "
            f"expectations over {rows} rows, {report.verifications} rule "
            f"verifications in {report.seconds:.1f}s"
        )
    else:
        console.print(
            f"[red]INVALID[/red]: {report.data_dir} — "
            f"{len(report.failures)} failed expectations, "
            f"{len(report.file_errors)} unreadable files"
        )
    for error in report.file_errors:
        console.print(f"  [red]file[/red] {escape(error)}", highlight=False)
    if report.failures and not console.is_terminal:  # logs (DVC, Prefect, CI): one line each
        for failure in report.failures:
            console.print(f"  [red]failed[/red] {escape(failure.line())}", highlight=False)
    elif report.failures:
        table = Table("suite", "expectation", "field", "rows", "examples", "what", show_lines=False)
        for failure in report.failures:
            rows_text = "table" if failure.failing_rows is None else str(failure.failing_rows)
            examples = ", ".join(failure.examples)
            if failure.observed is not None and not examples:
                examples = f"observed {failure.observed}"
            cells = (
                failure.suite,
                failure.expectation,
                failure.field,
                rows_text,
                examples,
                failure.description,
            )
            table.add_row(*(escape(cell) for cell in cells))
        console.print(table)
    docs = f"Data Docs: {report.docs_index}  " if report.docs_index.is_file() else ""
    console.print(f"{docs}results: {report.results_path}")


def report_markdown(report: ValidationReport) -> str:
    status = "passed" if report.success else "FAILED"
    lines = [
        f"# Data validation {status}",
        "",
        f"`{report.data_dir}`: {report.expectations} expectations, "
        f"{sum(report.rows.values())} rows, {report.verifications} rule verifications, "
        f"{report.seconds:.1f}s.",
        "",
    ]
    if report.file_errors:
        lines += ["## Unreadable files", ""] + [f"- {error}" for error in report.file_errors]
        lines.append("")
    if report.failures:
        lines += [
            "## Failed expectations",
            "",
            "| suite | expectation | field | rows | examples |",
            "|---|---|---|---|---|",
        ]
        for failure in report.failures:
            rows = "table" if failure.failing_rows is None else failure.failing_rows
            lines.append(
                f"| {failure.suite} | {failure.description} (`{failure.expectation}`) "
                f"| {failure.field} | {rows} | {', '.join(failure.examples)} |"
            )
    return "\n".join(lines) + "\n"
