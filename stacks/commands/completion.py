"""`authgate completion bash|zsh|fish`: a shell completion script, generated from the command line's own parser.

The script is static (subcommands, their sub-artefacts and options as argparse knows them), so completing costs the
shell nothing and never runs Python. Install: `authgate completion bash > ~/.local/share/bash-completion/completions/
authgate`, `authgate completion zsh > "${fpath[1]}/_authgate"`, `authgate completion fish >
~/.config/fish/completions/authgate.fish`.
"""
from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "fish")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to write the completion script for")


def run(args: argparse.Namespace) -> int:
    from stacks.cli import build_parser

    tree = command_tree(build_parser())
    sys.stdout.write({"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[args.shell](tree))
    return 0


def command_tree(parser: argparse.ArgumentParser) -> dict[str, dict]:
    """{"verify": {"options": [...], "commands": {}}, "render": {"options": [], "commands": {"routes": {...}}}}"""
    out: dict[str, dict] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                options = sorted(o for a in sub._actions for o in a.option_strings if o.startswith("--"))
                choices = [c for a in sub._actions if not a.option_strings and a.choices and
                           not isinstance(a, argparse._SubParsersAction) for c in a.choices]
                out[name] = {"options": options, "commands": command_tree(sub), "choices": choices}
    return out


def _parents(tree: dict[str, dict]) -> str:
    """The commands that take a second command word (render routes, serve forward-auth)."""
    return " ".join(name for name, node in tree.items() if node["commands"])


def _words(node: dict) -> list[str]:
    return list(node["commands"]) + node["choices"] + node["options"]


def _cases(tree: dict[str, dict], line) -> list[str]:
    """One shell `case` branch per command path: line(path, words)."""
    out = []
    for name, node in tree.items():
        out.append(line(name, " ".join(_words(node))))
        out.extend(line(f"{name}/{child}", " ".join(_words(leaf))) for child, leaf in node["commands"].items())
    return out


def bash_script(tree: dict[str, dict]) -> str:
    cases = _cases(tree, lambda path, words: f'        {path}) words="{words}";;')
    return f"""# bash completion for authgate (authgate completion bash)
_authgate() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmdpath="" word words parents=" {_parents(tree)} "
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in
            -*) ;;
            *) if [[ -z "$cmdpath" ]]; then cmdpath="$word"
               elif [[ "$cmdpath" != */* && "$parents" == *" $cmdpath "* ]]; then cmdpath="$cmdpath/$word"; fi;;
        esac
    done
    case "$cmdpath" in
        "") words="{" ".join([*tree, "--help", "--version"])}";;
{chr(10).join(cases)}
        *) words="";;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    [[ ${{#COMPREPLY[@]}} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}}
complete -o filenames -F _authgate authgate
"""


def zsh_script(tree: dict[str, dict]) -> str:
    cases = _cases(tree, lambda path, words: f"    {path}) candidates=({words}) ;;")
    # `words` and `path` are zsh specials (the command line; $PATH): the function uses neither name for itself.
    return f"""#compdef authgate
# zsh completion for authgate (authgate completion zsh)
_authgate() {{
  local cmdpath="" word parents=" {_parents(tree)} "
  local -a candidates
  for word in ${{words[2,CURRENT-1]}}; do
    [[ $word == -* ]] && continue
    if [[ -z $cmdpath ]]; then cmdpath=$word
    elif [[ $cmdpath != */* && $parents == *" $cmdpath "* ]]; then cmdpath=$cmdpath/$word; fi
  done
  case $cmdpath in
    "") candidates=({' '.join([*tree, "--help", "--version"])}) ;;
{chr(10).join(cases)}
    *) candidates=() ;;
  esac
  compadd -a candidates || _files
}}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _authgate "$@"; else compdef _authgate authgate; fi
"""


def fish_script(tree: dict[str, dict]) -> str:
    lines = ["# fish completion for authgate (authgate completion fish)",
             f"complete -c authgate -n __fish_use_subcommand -a '{' '.join(tree)}'",
             "complete -c authgate -n __fish_use_subcommand -l version -d 'print the version'"]
    for name, node in tree.items():
        seen = f"__fish_seen_subcommand_from {name}"
        if node["commands"]:
            lines.append(f"complete -c authgate -n '{seen}' -a '{' '.join(node['commands'])}'")
        if node["choices"]:
            lines.append(f"complete -c authgate -n '{seen}' -a '{' '.join(node['choices'])}'")
        for option in node["options"]:
            lines.append(f"complete -c authgate -n '{seen}' -l {option[2:]}")
        for child, leaf in node["commands"].items():
            for option in leaf["options"]:
                lines.append(f"complete -c authgate -n '{seen}; and __fish_seen_subcommand_from {child}' "
                             f"-l {option[2:]}")
    return "\n".join(lines) + "\n"
