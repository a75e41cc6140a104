from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from pbi_taskflow.alerts.templating import AlertTemplateError, load_template, templates_dir

MARKDOWN = "[click](https://evil.example) **x** _y_ `z` <https://evil.example/auto> ![i](https://evil.example/i.png)"
HOSTILE = 'bad "quote" \\ back\nslash "}]} </td><script>alert(1)</script> <!channel> {{ 7*7 }}'


def facts(**overrides: Any) -> dict[str, Any]:
    failed = {
        "workspace": "Finance",
        "workspace_id": "ws-1",
        "dataset": 'Sales "Gold"',
        "dataset_id": "ds-1",
        "status": "Failed",
        "failed": True,
        "error_code": "ModelRefreshFailed",
        "error_message": HOSTILE,
        "refresh_id": "rid-1",
        "kind": "enhanced",
        "duration_s": 65.0,
        "web_url": "https://app.powerbi.com/groups/ws-1/datasets/ds-1?a=1&b=2",
        "reason": None,
        "start": None,
        "end": None,
    }
    ok = {**failed, "dataset": "Inventory", "status": "Completed", "failed": False, "error_code": None,
          "error_message": None, "refresh_id": "rid-2", "web_url": None}
    base = {
        "event": "failure",
        "title": "Power BI refresh failed",
        "summary": "1 of 2 dataset(s) failed in d.t",
        "dag_id": "nightly",
        "task_id": "refresh",
        "run_id": "manual__2026",
        "try_number": 2,
        "max_tries": 1,
        "final": False,
        "map_index": -1,
        "log_url": "http://localhost:8080/dags/nightly/runs/manual__2026/tasks/refresh?try_number=2",
        "datasets": [failed, ok],
        "failed": [failed],
        "error": {"type": "RefreshFailedError", "message": "failed", "code": None, "request_id": None},
        "auth": None,
        "partial": False,
        "earlier": [],
        "earlier_summary": None,
    }
    base.update(overrides)
    base.setdefault("listed", base["datasets"])
    return base


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs)["href"] or "")
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def markdown(text: str) -> _Structure:
    """The HTML structure a CommonMark renderer (as Teams applies to TextBlock and FactSet text) makes of ``text``."""
    parser = _Structure()
    parser.feed(MarkdownIt("commonmark").render(text))
    parser.close()
    return parser


def plain(text: str) -> str:
    """The visible text of ``text`` once rendered as CommonMark."""
    return "".join(markdown(text).text).strip()


def card_texts(content: dict[str, Any]) -> list[str]:
    """Every Markdown-rendered string of an Adaptive Card: TextBlock text and FactSet titles and values."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(node["text"])
            if node.get("type") == "FactSet":
                found.extend(v for fact in node["facts"] for v in (fact["title"], fact["value"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(content.get("body", []))
    return found


def test_teams_card_is_valid_json_with_hostile_text() -> None:
    """User text full of quotes, backslashes and braces stays inside its JSON string in the Teams card."""
    card = json.loads(load_template("teams_card.json.j2", "json").render(facts()))
    content = card["attachments"][0]["content"]
    assert content["type"] == "AdaptiveCard"
    assert content["actions"][0]["url"].endswith("try_number=2")
    containers = [b for b in content["body"] if b.get("type") == "Container"]
    assert [plain(c["items"][0]["text"]) for c in containers] == ['Finance / Sales "Gold"', "Finance / Inventory"]
    facts_of_failed = {f["title"]: f["value"] for f in containers[0]["items"][1]["facts"]}
    assert facts_of_failed["Error code"] == "ModelRefreshFailed"
    assert plain(facts_of_failed["Error"]) == HOSTILE
    assert facts_of_failed["Refresh id"] == "rid-1"
    assert facts_of_failed["Duration"] == "1 min 05 s"


def test_teams_card_user_markdown_cannot_form_links_or_formatting() -> None:
    """Markdown link, emphasis and list syntax in any user value renders as literal text in the Teams card."""
    line_start = "- item\n1. step\n---"
    failed = {**facts()["datasets"][0], "error_message": MARKDOWN, "dataset": "**Gold**", "reason": line_start,
              "workspace": "[ws](https://evil.example)", "error_code": "Model_Refresh _code_"}
    f = facts(title=f"Refresh {MARKDOWN}", dag_id="**dag**", run_id="[run](https://evil.example)",
              datasets=[failed], failed=[failed])
    content = json.loads(load_template("teams_card.json.j2", "json").render(f))["attachments"][0]["content"]
    texts = card_texts(content)
    assert len(texts) > 10
    for text in texts:
        rendered = markdown(text)
        assert set(rendered.tags) <= {"p", "br"}, (text, rendered.tags)
        assert "https://evil.example" not in rendered.links
    visible = {plain(t) for t in texts}
    assert {MARKDOWN, f"Refresh {MARKDOWN}", "**dag**", "[run](https://evil.example)", "Model_Refresh _code_",
            line_start, "[ws](https://evil.example) / **Gold**"} <= visible
    assert "Model_Refresh" in json.dumps(content), "an underscore inside a word needs no escape"
    assert [a["url"] for a in content["actions"]] == [f["log_url"]]
    [action_set] = [i for c in content["body"] if c.get("type") == "Container" for i in c["items"]
                    if i["type"] == "ActionSet"]
    assert action_set["actions"][0]["url"] == "https://app.powerbi.com/groups/ws-1/datasets/ds-1?a=1&b=2"


def test_slack_blocks_escape_mrkdwn() -> None:
    """The Slack body is valid JSON and user text cannot ping <!channel> or forge links."""
    body = json.loads(load_template("slack_blocks.json.j2", "json").render(facts()))
    assert body["text"].startswith("Power BI refresh failed")
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section" and "text" in b]
    dataset_text = next(s for s in sections if "ModelRefreshFailed" in s)
    assert "<!channel>" not in dataset_text
    assert "&lt;!channel&gt;" in dataset_text
    assert "<https://app.powerbi.com/groups/ws-1/datasets/ds-1?a=1&amp;b=2|Sales \"Gold\">" in dataset_text
    assert body["blocks"][-1]["elements"][0]["url"].startswith("http://localhost:8080/")


def test_email_html_is_well_formed_and_escaped() -> None:
    """The HTML email parses with balanced tags, escapes user text and links the log and the dataset."""
    html = load_template("email.html.j2", "html").render(facts())
    parser = _Structure()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    assert "script" not in parser.tags
    assert parser.tags[:2] == ["html", "head"]
    assert "table" in parser.tags
    assert any("try_number=2" in link for link in parser.links)
    assert "https://app.powerbi.com/groups/ws-1/datasets/ds-1?a=1&b=2" in parser.links
    assert "<script>alert(1)</script>" in "".join(parser.text)


def test_email_text_lists_failed_dataset() -> None:
    """The plain-text email names each dataset with its error code, message and refresh id."""
    text = load_template("email.txt.j2", "text").render(facts())
    assert "Finance / Sales \"Gold\": Failed" in text
    assert "Error code: ModelRefreshFailed" in text
    assert "Refresh id: rid-1" in text
    assert "Try:  2 of 2" in text


@pytest.mark.parametrize("name", ["email.txt.j2", "email.html.j2", "slack_blocks.json.j2", "teams_card.json.j2"])
def test_a_final_failure_says_it_was_not_retried(name: str) -> None:
    """An error that fails the task without its remaining retries shows "not retried" instead of "1 of 2"."""
    kind = "text" if name.endswith(".txt.j2") else "html" if name.endswith(".html.j2") else "json"
    out = load_template(name, kind).render(facts(try_number=1, final=True, summary="Sales failed"))
    assert "not retried: a retry cannot fix this error" in out
    assert "1 of 2" not in out


def test_auth_facts_render_advice() -> None:
    """An authentication failure shows its advice in every built-in template."""
    advice = "The client secret of app registration 1111 has expired."
    auth = {"client_id": "1111", "tenant_id": "t", "code": "AADSTS7000222", "advice": advice}
    f = facts(auth=auth, datasets=[], failed=[], title="Power BI authentication failed")
    for name, fmt in (("teams_card.json.j2", "json"), ("slack_blocks.json.j2", "json"),
                      ("email.html.j2", "html"), ("email.txt.j2", "text")):
        assert advice in load_template(name, fmt).render(f), name


def test_custom_template_by_path(tmp_path: Path) -> None:
    """A user template file is used, with the same JSON escaping and the tojson filter."""
    path = tmp_path / "mine.json.j2"
    path.write_text('{"dag": "{{ dag_id }}", "n": {{ datasets | length | tojson }}, "msg": "{{ failed[0].error_message }}"}')
    body = json.loads(load_template(path, "json").render(facts()))
    assert body == {"dag": "nightly", "n": 2, "msg": HOSTILE}


def test_broken_template_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error in a custom template raises AlertTemplateError naming the file and the line."""
    path = tmp_path / "broken.json.j2"
    path.write_text('{\n  "a": "{{ dag_id }}",\n  "b": "{% if %}"\n}\n')
    with pytest.raises(AlertTemplateError, match=r"broken\.json\.j2 line 3"):
        load_template(path, "json")


def test_render_error_names_line(tmp_path: Path) -> None:
    """An undefined variable at render time is reported with the template and its line."""
    path = tmp_path / "typo.txt.j2"
    path.write_text("ok\n{{ dag_idd }}\n")
    template = load_template(path, "text")
    with pytest.raises(AlertTemplateError, match=r"typo\.txt\.j2 line 2 failed to render: UndefinedError"):
        template.render(facts())


def test_invalid_json_output_is_reported(tmp_path: Path) -> None:
    """A custom JSON template that renders invalid JSON fails with a clear message."""
    path = tmp_path / "comma.json.j2"
    path.write_text('{"a": 1,}')
    with pytest.raises(AlertTemplateError, match="rendered invalid JSON"):
        load_template(path, "json").render(facts())


def test_unknown_template_lists_builtins() -> None:
    """A template that is neither a file nor a built-in name is rejected with the built-in names."""
    with pytest.raises(AlertTemplateError, match=r"teams_card\.json\.j2"):
        load_template("nope.j2", "json")


def test_templates_found_in_wheel_and_checkout_layouts(tmp_path: Path) -> None:
    """The loader finds templates inside the package (wheel) first, else at the repository root (checkout)."""
    checkout = tmp_path / "checkout"
    shutil.copytree(templates_dir(), checkout / "templates")
    (checkout / "pbi_taskflow").mkdir()
    assert templates_dir(checkout / "pbi_taskflow") == checkout / "templates"
    wheel = tmp_path / "site-packages" / "pbi_taskflow"
    shutil.copytree(templates_dir(), wheel / "templates")
    assert templates_dir(wheel) == wheel / "templates"
    with pytest.raises(AlertTemplateError, match="missing"):
        templates_dir(tmp_path / "empty" / "pbi_taskflow")


def test_many_datasets_stay_within_channel_limits() -> None:
    """With 60 datasets, the Slack body keeps under 50 blocks and the Teams card under 28 KB, naming the rest."""
    one = facts()["datasets"][0]
    many = [{**one, "dataset": f"Model {i}", "error_message": "x" * 3000} for i in range(60)]
    f = facts(datasets=many, failed=many)
    slack = json.loads(load_template("slack_blocks.json.j2", "json").render(f))
    assert len(slack["blocks"]) <= 50
    assert "40 more dataset(s)" in json.dumps(slack)
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in slack["blocks"])
    teams = load_template("teams_card.json.j2", "json").render(f)
    assert len(teams.encode()) < 28 * 1024
    assert "50 more dataset(s)" in teams
