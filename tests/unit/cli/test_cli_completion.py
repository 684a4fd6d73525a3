"""`authgate --version` and `authgate completion`: the bash script completes in a real bash; zsh and fish scripts
name every subcommand and option the parser has."""
from __future__ import annotations

import shutil
import subprocess
from importlib.metadata import version

import pytest

from stacks.cli import build_parser, main
from stacks.commands.completion import command_tree


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"authgate {version('authgate')}"


def script(shell: str, capsys) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("line, expected, absent", [
    ("authgate ", {"verify", "explain", "render", "synth", "completion", "--version"}, {"--batch"}),
    ("authgate ver", {"verify"}, {"explain"}),
    ("authgate verify --sc", {"--scope", "--scope-all"}, {"--role"}),
    ("authgate verify --policy p.yaml --gr", {"--group", "--group-all"}, set()),
    ("authgate render ", {"routes", "openapi", "apim"}, {"--backend-url"}),
    ("authgate render openapi --b", {"--backend-url"}, set()),
    ("authgate completion ", {"bash", "zsh", "fish"}, set()),
])
def test_bash_completion_completes_commands_artefacts_and_options(line, expected, absent, capsys, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    path = tmp_path / "authgate.bash"
    path.write_text(script("bash", capsys))
    words = line.split(" ")
    probe = (f"source {path}\nCOMP_WORDS=({' '.join(repr(w) for w in words)})\nCOMP_CWORD={len(words) - 1}\n"
             "_authgate\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run([bash, "--norc", "--noprofile", "-c", probe], capture_output=True, text=True, timeout=30,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    offered = set(done.stdout.split())
    assert expected <= offered and not (absent & offered), offered


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_name_every_command_and_option(shell, capsys):
    text = script(shell, capsys)
    for name, node in command_tree(build_parser()).items():
        assert name in text
        for option in node["options"]:
            assert (option if shell == "zsh" else f"-l {option[2:]}") in text, (name, option)
    assert ("compdef _authgate authgate" in text) if shell == "zsh" else ("complete -c authgate" in text)


def test_an_unknown_shell_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        main(["completion", "powershell"])
    assert done.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
