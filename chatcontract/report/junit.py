"""JUnit XML: one ``<testcase>`` per contract, one ``<testsuite>`` per category.

Outcomes map to JUnit as follows:

* passed: an empty ``<testcase>``;
* failed: ``<failure>`` with the first finding as ``message`` and every finding
  (location, message, repro command) in the body;
* skipped: ``<skipped message="...">`` (not requested or not applicable);
* inconclusive P1: ``<error type="inconclusive">``. A P1 contract nobody
  could judge (e.g. credentials rejected) must not look like a neutral skip
  on a CI dashboard: that is how the status report counted unjudged tests as
  fine. ``error`` is JUnit's word for "the test could not do its job";
* inconclusive P2: ``<skipped message="inconclusive: ...">``, matching the exit
  code rule, where only inconclusive P1 contracts fail a run.

Every string goes through ``redact`` (results from the runner are already
redacted; this is the second net), and characters XML 1.0 cannot carry (control
characters a fuzzer put in a message, lone surrogates) are escaped as ``\\uXXXX``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from chatcontract.report.model import ContractResult, Outcome

__all__ = ["junit_xml", "write_junit"]

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _identity(text: str) -> str:
    return text


def _clean(text: str, redact: Callable[[str], str]) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group(0)):04x}", redact(text))


def _details(result: ContractResult, clean: Callable[[str], str]) -> str:
    lines = []
    if result.reason:
        lines.append(result.reason)
    for finding in result.findings:
        prefix = "warning: " if finding.severity == "warning" else ""
        lines.append(prefix + finding.line())
        if finding.repro:
            lines.append(f"  reproduce: {finding.repro}")
        lines.extend(f"  {t.direction} @{t.offset:.3f}s: {t.content}" for t in finding.transcript)
    return clean("\n".join(lines))


def _testcase(result: ContractResult, clean: Callable[[str], str]) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": clean(result.category),
            "name": clean(result.name),
            "time": f"{result.duration:.3f}",
        },
    )
    props = ET.SubElement(case, "properties")
    for name, value in (("id", result.id), ("tier", result.tier), ("outcome", result.outcome)):
        ET.SubElement(props, "property", {"name": name, "value": clean(str(value))})
    if result.operation:
        ET.SubElement(props, "property", {"name": "operation", "value": clean(result.operation)})
    if result.outcome is Outcome.FAILED:
        first = result.failures[0].line() if result.failures else result.reason or "failed"
        node = ET.SubElement(case, "failure", {"message": clean(first), "type": "contract"})
        node.text = _details(result, clean)
    elif result.outcome is Outcome.INCONCLUSIVE and result.tier == "P1":
        node = ET.SubElement(
            case,
            "error",
            {"message": clean(f"inconclusive: {result.reason}"), "type": "inconclusive"},
        )
        node.text = _details(result, clean)
    elif result.outcome is Outcome.INCONCLUSIVE:
        ET.SubElement(case, "skipped", {"message": clean(f"inconclusive: {result.reason}")})
    elif result.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", {"message": clean(result.reason or "skipped")})
    return case


def _counts(cases: list[ET.Element]) -> dict[str, str]:
    def count(tag: str) -> int:
        return sum(1 for c in cases if c.find(tag) is not None)

    total = sum(float(c.get("time", "0")) for c in cases)
    return {
        "tests": str(len(cases)),
        "failures": str(count("failure")),
        "errors": str(count("error")),
        "skipped": str(count("skipped")),
        "time": f"{total:.3f}",
    }


def junit_xml(
    results: Iterable[ContractResult],
    *,
    name: str = "chatcontract",
    redact: Callable[[str], str] = _identity,
    timestamp: datetime | None = None,
) -> str:
    """The JUnit XML document for ``results``, as a string."""

    def clean(text: str) -> str:
        return _clean(text, redact)

    stamp = (timestamp or datetime.now(UTC)).isoformat(timespec="seconds")
    by_category: dict[str, list[ET.Element]] = {}
    for result in results:
        by_category.setdefault(result.category, []).append(_testcase(result, clean))
    root = ET.Element("testsuites", {"name": clean(name)})
    all_cases: list[ET.Element] = []
    for category, cases in by_category.items():
        suite = ET.SubElement(
            root, "testsuite", {"name": clean(category), "timestamp": stamp, **_counts(cases)}
        )
        suite.extend(cases)
        all_cases.extend(cases)
    root.attrib.update(_counts(all_cases))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(
    path: str | Path,
    results: Iterable[ContractResult],
    *,
    redact: Callable[[str], str] = _identity,
    name: str = "chatcontract",
) -> None:
    """Write :func:`junit_xml` to ``path`` (UTF-8), replacing it atomically."""
    target = Path(path)
    text = junit_xml(results, name=name, redact=redact)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
