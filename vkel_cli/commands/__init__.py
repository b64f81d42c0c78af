"""The subcommands. Each module holds a thin typer wrapper that parses options and calls a plain
function elsewhere in the package; heavy libraries are imported inside the stage, never here.

COMMANDS lists (name, module, attribute): a `typer.Typer` attribute becomes a command group,
a function a single command. `vkel --help` lists them in this order, the pipeline's: data, the
stages in the order they run, scoring, the analysis commands, then env.
"""

COMMANDS: list[tuple[str, str, str]] = [
    ("data", "data", "app"),
    ("augment", "augment", "augment_cli"),
    ("models", "models", "app"),
    ("train", "train", "train_cli"),
    ("predict", "predict", "predict_cli"),
    ("detect", "detect", "detect_cli"),
    ("knowledge", "knowledge", "knowledge_cli"),
    ("vote", "vote", "vote_cli"),
    ("score", "score", "score_cli"),
    ("report", "report", "report_cli"),
    ("export", "export", "export_cli"),
    ("ceiling", "ceiling", "ceiling_cli"),
    ("env", "env", "env_cli"),
]
