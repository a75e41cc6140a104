"""Reject bad answers before anything is generated, listing every problem at once."""

from __future__ import annotations

import json
import keyword
import os
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# {% raw %}

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
CONN_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually")
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (name, low, high, names whose index + offset is the value)
CRON_FIELDS = (
    ("minute", 0, 59, None, 0),
    ("hour", 0, 23, None, 0),
    ("day of month", 1, 31, None, 0),
    ("month", 1, 12, MONTHS, 1),
    ("day of week", 0, 7, DAYS, 0),
)
# Names the generated DAG file uses at module level; a DAG function with one of them would shadow it.
RESERVED = {"dag", "task", "datetime", "Path", "Any", "Refresh", "powerbi_refresh", "load_config", "CONFIG_FILE",
            "ALERT", "TeamsNotifier", "SlackNotifier", "EmailNotifier", "annotations"}
CHOICES = {
    "auth_method": ("secret", "certificate", "federated", "managed_identity"),
    "alert_channel": ("teams", "slack", "email", "none"),
    "deferrable": ("yes", "no"),
}


def _cron_value(text: str, low: int, high: int, names: list[str] | None, offset: int) -> int | None:
    if text.isdigit():
        value = int(text)
        return value if low <= value <= high else None
    if names and text.upper() in names:
        return names.index(text.upper()) + offset
    return None


def cron_field_error(text: str, name: str, low: int, high: int, names: list[str] | None, offset: int) -> str | None:
    """Why one cron field is invalid, or None."""
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"{name} step {step!r} must be a positive number"
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = _cron_value(start, low, high, names, offset)
        if first is None:
            return f"{name} value {start!r} is not between {low} and {high}"
        if dash:
            last = _cron_value(end, low, high, names, offset)
            if last is None:
                return f"{name} value {end!r} is not between {low} and {high}"
            if last < first:
                return f"{name} range {base!r} runs backwards"
        elif step:
            continue
    return None


def schedule_error(value: str) -> str | None:
    """Why a schedule is invalid, or None (accepts None, presets and 5-field cron)."""
    text = value.strip()
    if text in ("None", "none", "null", ""):
        return None
    if text.startswith("@"):
        if text.lower() in PRESETS:
            return None
        return f"unknown preset {text!r}; expected one of {', '.join(PRESETS)}"
    fields = text.split()
    if len(fields) != 5:
        return f"{text!r} has {len(fields)} fields; a cron expression has 5 (minute hour day-of-month month day-of-week)"
    for field, (name, low, high, names, offset) in zip(fields, CRON_FIELDS, strict=True):
        problem = cron_field_error(field, name, low, high, names, offset)
        if problem:
            return f"{text!r}: {problem}"
    return None


HEX = frozenset("0123456789abcdefABCDEF")
GUID_SHAPE = (8, 4, 4, 4, 12)


def guid_problem(value: str) -> str | None:
    """Why ``value`` looks like a GUID but is not one (None for a well-formed GUID or an ordinary name).

    Power BI ids are bare GUIDs, 32 hex digits as 8-4-4-4-12. Anything close to that (a letter that is not
    a hex digit, braces, missing dashes, a digit too many or too few) is a typo, not a name.
    """
    text = value.strip()
    if GUID.match(text):
        return None
    braced = text.startswith("{") and text.endswith("}")
    bare = text[1:-1] if braced else text
    if braced and GUID.match(bare):
        return f"a GUID in braces; write it without them: {bare}"
    groups = bare.split("-")
    digits = "".join(groups)
    if not digits or not digits.isalnum() or not digits.isascii():
        return None  # spaces, punctuation or other letters: an ordinary name
    hex_share = sum(c in HEX for c in digits) / len(digits)
    lengths = tuple(len(g) for g in groups)
    if lengths == GUID_SHAPE and hex_share >= 0.75:
        bad = ", ".join(repr(c) for c in sorted({c for c in digits if c not in HEX}))
        return f"has the shape of a GUID but {bad} {'is not a hex digit' if ',' not in bad else 'are not hex digits'}"
    if hex_share < 1:
        return None
    if len(groups) == 1 and 28 <= len(digits) <= 36:
        if len(digits) == 32:
            dashed = "-".join(digits[sum(GUID_SHAPE[:i]):sum(GUID_SHAPE[:i + 1])] for i in range(5))
            return f"a GUID without dashes; write it as {dashed}"
        return f"{len(digits)} hex digits without dashes; a GUID has 32, written 8-4-4-4-12"
    if len(groups) >= 3 and len(digits) >= 16:
        shape = "-".join(str(n) for n in lengths)
        return f"its groups have {shape} hex digits; a GUID has 8-4-4-4-12"
    return None


def id_error(value: str, what: str) -> str | None:
    """A name is free text; something that looks like an id must be a well-formed GUID."""
    problem = guid_problem(value)
    if problem:
        return f"{what} {value.strip()!r} looks like an id but is not a GUID: {problem}"
    return None


VERSION = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
VCS_URL = re.compile(r"^(git|hg|svn|bzr)\+(https|http|ssh|file|git)://\S+$")


def source_error(value: str) -> str | None:
    """Why ``pbi_taskflow_source`` is not a version, an absolute path that exists, or a VCS URL."""
    text = value.strip()
    if VERSION.match(text) or VCS_URL.match(text):
        return None
    path = text.removeprefix("file://")
    if os.path.isabs(path):
        return None if os.path.exists(path) else f"{text!r}: no wheel, sdist or folder at this path"
    return (f"{text!r}: expected a version (0.1.0), the absolute path of a wheel, sdist or checkout "
            "(/path/to/pbi_taskflow-0.1.0-py3-none-any.whl), or a VCS URL (git+https://host/org/pbi_taskflow.git)")


def _free_text(key: str, empty: str):  # a check of one free-text answer
    def check(a: dict[str, str]) -> list[str]:
        errors = [] if a[key].strip() else [f"{key}: must not be empty{empty}"]
        if any(char in a[key] for char in '"\\\n'):
            errors.append(f"{key} {a[key]!r}: must not contain double quotes, backslashes or line breaks")
        return errors

    return check


def _project_slug(a: dict[str, str]) -> list[str]:
    if SLUG.match(a["project_slug"]):
        return []
    return [f"project_slug {a['project_slug']!r}: use letters, digits, '_', '-' or '.', starting with a letter or digit"]


def _dag_id(a: dict[str, str]) -> list[str]:
    dag_id = a["dag_id"]
    if keyword.iskeyword(dag_id):
        return [(f"dag_id {dag_id!r}: is a Python keyword, so it cannot name the DAG function; "
                f"choose another, e.g. {dag_id}_refresh")]
    if not dag_id.isidentifier():
        return [f"dag_id {dag_id!r}: must be a Python identifier (letters, digits and '_', not starting with a digit)"]
    if dag_id in RESERVED:
        return [f"dag_id {dag_id!r}: the DAG file already uses this name; choose another, e.g. {dag_id}_refresh"]
    return []


def _schedule(a: dict[str, str]) -> list[str]:
    problem = schedule_error(a["schedule"])
    return [f"schedule: {problem}"] if problem else []


def _workspace(a: dict[str, str]) -> list[str]:
    workspace = a["workspace"].strip()
    if not workspace:
        return ["workspace: must not be empty (a workspace name or id)"]
    return [p for p in [id_error(workspace, "workspace")] if p]


def _datasets(a: dict[str, str]) -> list[str]:
    if not any(d.strip() for d in a["datasets"].split(",")):
        return ["datasets: give at least one dataset name or id, comma-separated"]
    return _names_list(a, "datasets", "dataset")


def _names_list(a: dict[str, str], key: str, kind: str) -> list[str]:
    """Problems of a comma-separated answer of names or ids: empty entries, duplicates, malformed ids."""
    names = [d.strip() for d in a[key].split(",")]
    if not all(names):
        return [f"{key} {a[key]!r}: an entry is empty (check the commas)"]
    errors = []
    lowered = [d.lower() for d in names]
    duplicates = sorted({d for d in lowered if lowered.count(d) > 1})
    if duplicates:
        errors.append(f"{key}: {duplicates} listed more than once")
    errors.extend(p for p in (id_error(d, kind) for d in names) if p)
    return errors


def _upstream_dataflows(a: dict[str, str]) -> list[str]:
    text = a.get("upstream_dataflows", "").strip()
    if not text:
        return []  # no chain: only the datasets are refreshed
    return _names_list(a, "upstream_dataflows", "dataflow")


def _conn_id(a: dict[str, str]) -> list[str]:
    if CONN_ID.match(a["conn_id"]):
        return []
    return [f"conn_id {a['conn_id']!r}: use letters, digits and '_' (it becomes the AIRFLOW_CONN_<ID> variable name)"]


def _choice(key: str):
    def check(a: dict[str, str]) -> list[str]:
        allowed = CHOICES[key]
        return [] if a[key] in allowed else [f"{key} {a[key]!r}: expected one of {', '.join(allowed)}"]

    return check


def _alert_target(a: dict[str, str]) -> list[str]:
    channel, target = a["alert_channel"], a["alert_target"].strip()
    if channel == "email":
        addresses = [x.strip() for x in target.split(",")]
        if not target or any(not EMAIL.match(x) for x in addresses):
            return [f"alert_target {target!r}: not a valid email address (e.g. data-team@example.com)"]
    elif channel in ("teams", "slack") and not CONN_ID.match(target):
        return [(f"alert_target {target!r}: for {channel}, give the Airflow connection id holding the webhook URL "
                "(letters, digits and '_'), never the URL itself")]
    return []


def _source(a: dict[str, str]) -> list[str]:
    problem = source_error(a.get("pbi_taskflow_source", "") or "")
    return [f"pbi_taskflow_source {problem}"] if problem else []


#: One check per answer, in the order the questions are asked; each returns that answer's problems.
CHECKS = {
    "project_name": _free_text("project_name", ""),
    "project_slug": _project_slug,
    "dag_id": _dag_id,
    "owner": _free_text("owner", " (a team or person)"),
    "schedule": _schedule,
    "workspace": _workspace,
    "datasets": _datasets,
    "upstream_dataflows": _upstream_dataflows,
    "conn_id": _conn_id,
    "auth_method": _choice("auth_method"),
    "alert_channel": _choice("alert_channel"),
    "alert_target": _alert_target,
    "deferrable": _choice("deferrable"),
    "pbi_taskflow_source": _source,
}


def check_answer(key: str, answers: dict[str, str]) -> list[str]:
    """The problems of one answer (``answers`` holds it and every answer asked before it)."""
    check = CHECKS.get(key)
    return check(answers) if check else []


def validate(answers: dict[str, str]) -> list[str]:
    """Every problem with the answers, as messages naming the answer and what is expected."""
    errors: list[str] = []
    for key in CHECKS:
        if key == "alert_target" and answers["alert_channel"] not in CHOICES["alert_channel"]:
            continue  # its check depends on a valid channel, which is reported already
        errors.extend(check_answer(key, answers))
    return errors


def main() -> int:
    errors = validate(ANSWERS)
    if errors:
        print("Cannot generate the project; fix these answers and run again:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
# {% endraw %}
