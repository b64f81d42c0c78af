#!/usr/bin/env python3
"""Generate completions/ (bash, zsh, fish) and man/ (vkel.1 and one page per subcommand) from the
command tree. One source (the typer app), a fixed date, so the output is reproducible; the test
suite regenerates into a temporary directory and fails when the committed files are stale.

Usage: scripts/gen_docs.py [--out DIR]   (default: the repository root)
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATE = "2026-11-26"  # fixed, so regenerating changes nothing unless the commands change

COMMON_ENV = {
    "VKEL_CACHE": "Cache directory (LLM answers, downloaded images). Default: $XDG_CACHE_HOME/vkel or ~/.cache/vkel.",
    "XDG_CACHE_HOME": "Base of the default cache directory.",
    "VKEL_DEBUG": "When set, an unexpected internal error prints its (secret-redacted) traceback.",
    "VKEL_VERBOSE": "When 1, like --verbose: progress and libraries' warnings on stderr even when it is not a "
                    "terminal.",
}
COMMAND_ENV = {
    "knowledge": {"<api_key_env>": "API keys for LLM endpoints are read from the environment variables named "
                                   "in the LLM config (never from the command line)."},
    "vote": {"<api_key_env>": "API keys for the voter endpoint, as for vkel knowledge."},
    "predict": {"VKEL_OPENAI_API_KEY": "API key for --engine openai (or the variable named by --api-key-env)."},
    "augment": {"VKEL_GOOGLE_API_KEY": "Google Custom Search API key (--retriever google).",
                "VKEL_GOOGLE_BASE_URL": "Override the Custom Search endpoint (a mirror or a test server).",
                "VKEL_GOOGLE_CSE_ID": "Google Custom Search engine id (--retriever google)."},
}
EXIT_STATUS = [("0", "Success."), ("1", "A data or runtime error (the message names the file and line or the "
               "record); also at the end of an --on-error skip run that skipped anything."),
               ("2", "A usage error (unknown option, bad value; no input file while stdin is a terminal)."),
               ("130", "Interrupted by SIGINT (Ctrl-C): stopped within about two seconds, in-flight calls "
                "abandoned, no partial -o file left."),
               ("143", "Terminated by SIGTERM, with the same clean-up as SIGINT."),
               ("", "A reader that goes away (vkel ... | head) ends the command quietly with 0; a stdout that "
                "cannot be written (disk full, closed) is an error, 1.")]


# ------------------------------------------------------------------------------ the tree


def command_tree():
    import typer.main

    from vkel_cli.cli import register

    return typer.main.get_command(register())


def walk(command, path=()):
    """Yield (path, command) for every node, depth first, in the registered order."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            yield from walk(sub, path + (name,))


def choices(param) -> list[str]:
    found = getattr(getattr(param, "type", None), "choices", None)
    if found:
        return [str(v) for v in found]
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if typing.get_origin(annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(annotation)]
    return []


def options(command):
    return [p for p in command.params if p.opts and p.opts[0].startswith("-") and not getattr(p, "hidden", False)]


def arguments(command):
    return [p for p in command.params if not (p.opts and p.opts[0].startswith("-"))]


def all_opts(command) -> list[str]:
    names = [o for p in options(command) for o in p.opts + p.secondary_opts]
    return names + ["--help"]


# ------------------------------------------------------------------------------ completions


def case_tables(tree):
    """What both POSIX-shell completions encode, shell-neutral: (path, word, next path) steps down the
    tree; (path, option, choices) for options with fixed values; (path, words, is leaf) per node."""
    nodes = list(walk(tree))
    steps = [(" ".join(p), name, " ".join(p + (name,))) for p, cmd in nodes for name in getattr(cmd, "commands", {})]
    valued = [(" ".join(p), opt, " ".join(choices(param)))
              for p, cmd in nodes for param in options(cmd) if choices(param)
              for opt in param.opts + param.secondary_opts]
    words = [(" ".join(p), " ".join(list(getattr(cmd, "commands", {})) + all_opts(cmd)),
              not getattr(cmd, "commands", None)) for p, cmd in nodes]
    return steps, valued, words


# Both completions name their variable `cmdpath`, not `path`: in zsh `path` is tied to $PATH, and a
# local `path=""` would empty the command search path inside the completion function.
def bash(tree) -> str:
    steps, valued, words = case_tables(tree)
    lines = ["# bash completion for vkel (generated by scripts/gen_docs.py; do not edit)", "_vkel() {",
             '  local cur prev cmdpath="" w i',
             "  cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}",
             "  for ((i = 1; i < COMP_CWORD; i++)); do",
             "    w=${COMP_WORDS[i]}; [[ $w == -* ]] && continue",
             '    case "$cmdpath|$w" in']
    lines += [f'      "{path}|{word}") cmdpath="{below}" ;;' for path, word, below in steps]
    lines += ["    esac", "  done", '  case "$cmdpath|$prev" in']
    lines += [f'    "{path}|{opt}") COMPREPLY=($(compgen -W "{values}" -- "$cur")); return ;;'
              for path, opt, values in valued]
    lines += ["  esac", '  case "$cmdpath" in']
    files = '; [[ $cur != -* ]] && COMPREPLY+=($(compgen -f -- "$cur"))'
    lines += [f'    "{path}") COMPREPLY=($(compgen -W "{found}" -- "$cur")){files if leaf else ""} ;;'
              for path, found, leaf in words]
    lines += ["  esac", "}", "complete -o filenames -F _vkel vkel", ""]
    return "\n".join(lines)


def zsh(tree) -> str:
    steps, valued, words = case_tables(tree)
    lines = ["#compdef vkel", "# zsh completion for vkel (generated by scripts/gen_docs.py; do not edit)",
             "_vkel() {", '  local cmdpath="" w i', "  for ((i = 2; i < CURRENT; i++)); do",
             "    w=${words[i]}; [[ $w == -* ]] && continue", '    case "$cmdpath|$w" in']
    lines += [f'      "{path}|{word}") cmdpath="{below}" ;;' for path, word, below in steps]
    lines += ["    esac", "  done", '  case "$cmdpath|${words[CURRENT-1]}" in']
    lines += [f'    "{path}|{opt}") compadd -- {values}; return ;;' for path, opt, values in valued]
    lines += ["  esac", '  case "$cmdpath" in']
    lines += [f'    "{path}") compadd -- {found}{"; _files" if leaf else ""} ;;' for path, found, leaf in words]
    lines += ["  esac", "}", '_vkel "$@"', ""]
    return "\n".join(lines)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish(tree) -> str:
    lines = ["# fish completion for vkel (generated by scripts/gen_docs.py; do not edit)",
             "function __vkel_path",
             "    set -l path", "    for w in (commandline -opc)[2..-1]",
             "        string match -q -- '-*' $w; and continue",
             "        set -l next (string join ' ' $path $w)",
             "        contains -- $next $__vkel_nodes; and set path $path $w", "    end",
             "    string join ' ' $path", "end", "complete -c vkel -f"]
    nodes = list(walk(tree))
    lines.insert(0, "set -g __vkel_nodes " + " ".join(_fish_quote(" ".join(p)) for p, _ in nodes if p))
    for path, cmd in nodes:
        cond = f"-n \"test (__vkel_path) = {_fish_quote(' '.join(path))}\""
        for name, sub in getattr(cmd, "commands", {}).items():
            lines.append(f"complete -c vkel {cond} -a {name} -d {_fish_quote(sub.get_short_help_str(60))}")
        for param in options(cmd):
            spec = []
            for opt in param.opts + param.secondary_opts:
                spec.append(f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}")
            if choices(param):
                spec.append(f"-x -a {_fish_quote(' '.join(choices(param)))}")
            elif not getattr(param, "is_flag", False):
                spec.append("-r -F")
            help_text = (param.help or "").split(". ")[0][:80]
            lines.append(f"complete -c vkel {cond} {' '.join(spec)} -d {_fish_quote(help_text)}")
        if not getattr(cmd, "commands", None) and path:
            lines.append(f"complete -c vkel {cond} -F")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ man pages


def roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.splitlines())


def _metavar(param) -> str:
    if getattr(param, "is_flag", False):
        return ""
    found = choices(param)
    return "{" + "|".join(found) + "}" if found else param.name.upper()


def man_page(path, cmd, version: str, subpages: list[str]) -> str:
    name = "-".join(("vkel",) + path)
    summary = cmd.get_short_help_str(200) if path else "fine-grained multimodal NER and grounding with VKEL"
    out = [f'.TH {name.upper()} 1 "{DATE}" "vkel {version}" "vkel manual"', ".SH NAME",
           f"{roff(name)} \\- {roff(summary)}", ".SH SYNOPSIS", f".B {roff(' '.join(('vkel',) + path))}"]
    subs = getattr(cmd, "commands", {})
    usage = "[OPTIONS] COMMAND [ARGS]..." if subs else " ".join(
        ["[OPTIONS]"] + [f"[{a.name.upper()}]..." if a.nargs == -1 else a.name.upper() for a in arguments(cmd)])
    out += [roff(usage), ".SH DESCRIPTION", roff(cmd.help or summary)]
    if subs:
        out.append(".SH COMMANDS")
        for sub_name, sub in subs.items():
            out += [".TP", f".B {roff(sub_name)}", roff(sub.get_short_help_str(200))]
    if arguments(cmd):
        out.append(".SH ARGUMENTS")
        for arg in arguments(cmd):
            out += [".TP", f".I {roff(arg.name.upper())}", roff(arg.help or "")]
    out.append(".SH OPTIONS")
    for param in options(cmd) + ([] if path else []):
        flags = ", ".join(param.opts + param.secondary_opts)
        metavar = _metavar(param)
        default = param.default
        shown = "" if default in (None, False, "", ()) or getattr(param, "is_flag", False) else f" [default: {default}]"
        out += [".TP", f".B {roff(flags)}" + (f" \\fI{roff(metavar)}\\fR" if metavar else ""),
                roff((param.help or "") + shown)]
    out += [".TP", ".B \\-h, \\-\\-help", "Show the help and exit."]
    out.append(".SH EXIT STATUS")
    for code, text in EXIT_STATUS:
        out += [".TP", f".B {code}", roff(text)] if code else [".PP", roff(text)]
    out.append(".SH ENVIRONMENT")
    env = dict(COMMON_ENV)
    env.update(COMMAND_ENV.get(path[0] if path else "", {}))
    for var, text in env.items():
        out += [".TP", f".B {roff(var)}", roff(text)]
    see = ["vkel(1)"] if path else [f"{p}(1)" for p in subpages]
    out += [".SH SEE ALSO", roff(", ".join(see))]
    return "\n".join(out) + "\n"


def generate() -> dict[str, str]:
    from vkel_cli import __version__

    tree = command_tree()
    files = {"completions/vkel.bash": bash(tree), "completions/_vkel": zsh(tree), "completions/vkel.fish": fish(tree)}
    nodes = list(walk(tree))
    pages = ["-".join(("vkel",) + p) for p, _ in nodes if p]
    for path, cmd in nodes:
        files[f"man/{'-'.join(('vkel',) + path)}.1"] = man_page(path, cmd, __version__, pages)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT))
    args = parser.parse_args()
    out = Path(args.out)
    files = generate()
    for stale in list((out / "man").glob("*.1")) if (out / "man").is_dir() else []:
        if f"man/{stale.name}" not in files:
            stale.unlink()
    for rel, text in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {len(files)} files under {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
