"""Reject bad answers before anything is generated, listing every problem at once."""

from __future__ import annotations

import json
import keyword
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# {% raw %}

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LOOKS_LIKE_ID = re.compile(r"^[0-9a-fA-F{}-]{8,}$")
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


def id_error(value: str, what: str) -> str | None:
    """A name is free text; something that looks like an id must be a well-formed GUID."""
    text = value.strip()
    if "-" in text and LOOKS_LIKE_ID.match(text) and not GUID.match(text.strip("{}")):
        return f"{what} {text!r} looks like an id but is not a GUID (expected 8-4-4-4-12 hex digits)"
    return None


def validate(answers: dict[str, str]) -> list[str]:
    """Every problem with the answers, as messages naming the answer and what is expected."""
    errors: list[str] = []
    if not answers["project_name"].strip():
        errors.append("project_name: must not be empty")
    for key in ("project_name", "owner"):
        if any(char in answers[key] for char in '"\\\n'):
            errors.append(f"{key} {answers[key]!r}: must not contain double quotes, backslashes or line breaks")
    if not SLUG.match(answers["project_slug"]):
        errors.append(
            f"project_slug {answers['project_slug']!r}: use letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    dag_id = answers["dag_id"]
    if not dag_id.isidentifier() or keyword.iskeyword(dag_id):
        errors.append(f"dag_id {dag_id!r}: must be a Python identifier (letters, digits and '_', not starting with a digit)")
    elif dag_id in RESERVED:
        errors.append(f"dag_id {dag_id!r}: the DAG file already uses this name; choose another, e.g. {dag_id}_refresh")
    if not answers["owner"].strip():
        errors.append("owner: must not be empty (a team or person)")
    problem = schedule_error(answers["schedule"])
    if problem:
        errors.append(f"schedule: {problem}")
    workspace = answers["workspace"].strip()
    if not workspace:
        errors.append("workspace: must not be empty (a workspace name or id)")
    else:
        errors.extend(p for p in [id_error(workspace, "workspace")] if p)
    datasets = [d.strip() for d in answers["datasets"].split(",")]
    if not any(datasets):
        errors.append("datasets: give at least one dataset name or id, comma-separated")
    elif not all(datasets):
        errors.append(f"datasets {answers['datasets']!r}: an entry is empty (check the commas)")
    else:
        lowered = [d.lower() for d in datasets]
        duplicates = sorted({d for d in lowered if lowered.count(d) > 1})
        if duplicates:
            errors.append(f"datasets: {duplicates} listed more than once")
        errors.extend(p for p in (id_error(d, "dataset") for d in datasets) if p)
    if not CONN_ID.match(answers["conn_id"]):
        errors.append(
            f"conn_id {answers['conn_id']!r}: use letters, digits and '_' (it becomes the AIRFLOW_CONN_<ID> variable name)"
        )
    for key, allowed in CHOICES.items():
        if answers[key] not in allowed:
            errors.append(f"{key} {answers[key]!r}: expected one of {', '.join(allowed)}")
    channel, target = answers["alert_channel"], answers["alert_target"].strip()
    if channel == "email":
        addresses = [a.strip() for a in target.split(",")]
        bad = [a for a in addresses if not EMAIL.match(a)]
        if bad or not target:
            errors.append(f"alert_target {target!r}: not a valid email address (e.g. data-team@example.com)")
    elif channel in ("teams", "slack") and not CONN_ID.match(target):
        errors.append(
            f"alert_target {target!r}: for {channel}, give the Airflow connection id holding the webhook URL "
            "(letters, digits and '_'), never the URL itself"
        )
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
