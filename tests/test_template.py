"""Templates: variables from headers, strict about missing ones, and cell values are only ever data."""

import pytest

from batchsms.errors import TemplateError
from batchsms.template import MessageTemplate, MissingVariable, RenderError, identifier_for

HEADER = ["First Name", "Mobile", "2nd-Visit", "Clinic"]


def test_variables_by_header_identifier_and_row():
    t = MessageTemplate("{{ First_Name }}/{{ Clinic }}/{{ _2nd_Visit }}/{{ row['First Name'] }}", HEADER)
    assert t.render(["Ann", "0412", "yes", "Bondi"]) == "Ann/Bondi/yes/Ann"


@pytest.mark.parametrize(
    ("header", "name"),
    [("First Name", "First_Name"), ("e-mail address", "e_mail_address"), ("2nd", "_2nd"), ("  ", None),
     ("Name", "Name"), ("Prénom", "Prénom")],
)
def test_identifier_for(header, name):
    assert identifier_for(header) == name


def test_cell_values_are_data_never_template_code():
    t = MessageTemplate("Hi {{ First_Name }}", HEADER)
    evil = "{{ 7*7 }}{% for x in range(3) %}x{% endfor %}{{ ''.__class__ }}"
    assert t.render([evil, "", "", ""]) == "Hi " + evil


def test_missing_variable_names_it_and_the_columns():
    t = MessageTemplate("Hi {{ FirstName }}", HEADER)
    with pytest.raises(MissingVariable) as info:
        t.render(["Ann", "", "", ""])
    assert info.value.name == "FirstName"
    assert "'First Name', 'Mobile', '2nd-Visit', 'Clinic'" in str(info.value)


def test_syntax_error_stops_the_run_naming_file_and_line(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hello\n{{ First_Name }\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"t\.txt:2: template syntax error"):
        MessageTemplate.from_file(path, HEADER)
    with pytest.raises(TemplateError, match="no such template file"):
        MessageTemplate.from_file(tmp_path / "none.txt", HEADER)


def test_sandbox_blocks_unsafe_attributes():
    t = MessageTemplate("{{ First_Name.__class__.__mro__ }}", HEADER)
    with pytest.raises(RenderError):
        t.render(["Ann", "", "", ""])


def test_trailing_newline_of_a_template_file_is_dropped(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hi {{ First_Name }}\n", encoding="utf-8")
    assert MessageTemplate.from_file(path, HEADER).render(["Ann", "", "", ""]) == "Hi Ann"


@pytest.mark.parametrize(
    "source",
    [
        "Hi {{ First_Name }}, {{ Clinic }}!",
        "{{First_Name}}{{Mobile}} {braces} }} {{ '{{' }}",
        "Line one\n  {{- First_Name }}\nLine two {{ row['Clinic'] }}",
        "{% if First_Name %}Hi {{ First_Name }}{% endif %} {{ Clinic | upper }}",
        "{% raw %}{{ not a var }}{% endraw %} {{ _2nd_Visit }}",
        "Plain text only.\n",
        "",
    ],
)
def test_fast_substitution_renders_exactly_as_jinja(source):
    fast = MessageTemplate(source, HEADER)
    slow = MessageTemplate(source, HEADER)
    slow.render_plain = None
    for cells in (["Ann", "0412", "yes", "Bondi"], ["{{ x }}", "{}", "{0}", "%s"], ["Zoë 🌸", "", "", "a}b{c"]):
        assert fast.render(cells) == slow.render(cells)


def test_fast_substitution_is_used_for_plain_templates():
    plain = MessageTemplate("Hi {{ First_Name }}!", HEADER).render_plain
    assert plain is not None and plain(["Ann", "x", "y"]) == "Hi Ann!"
    assert MessageTemplate("Hi {{ First_Name | upper }}", HEADER).render_plain is None
    assert MessageTemplate("Hi {{ Nope }}", HEADER).render_plain is None  # Jinja reports the missing variable


def test_a_misspelt_variable_suggests_the_column_meant():
    t = MessageTemplate("Hi {{ first_name }}", HEADER)
    with pytest.raises(MissingVariable, match=r"did you mean \{\{ First_Name \}\}\?"):
        t.render(["Ann", "0412", "x", "y"])
    with pytest.raises(TemplateError, match=r"did you mean \{\{ First_Name \}\}\? A column whose header has spaces"):
        MessageTemplate("Hi {{ First Name }}", HEADER)


def test_blank_variables_are_those_printed_bare_with_an_empty_cell():
    t = MessageTemplate("Hi {{ First_Name }} at {{ Clinic }}{% if Mobile %}{{ Mobile }}{% endif %}", HEADER)
    assert t.blank_variables(["", "", "x", " "]) == ["First_Name", "Clinic"]
    assert MessageTemplate('Hi {{ First_Name | default("there", true) }}', HEADER).blank_variables([""] * 4) == []
