"""The subcommands. Each module holds a thin typer wrapper that parses options and calls a plain
function elsewhere in the package; heavy libraries are imported inside the stage, never here.

COMMANDS lists (name, module, attribute): a `typer.Typer` attribute becomes a command group,
a function a single command. cli.py registers them in this order.
"""

COMMANDS: list[tuple[str, str, str]] = [
    ("data", "data", "app"),
    ("score", "score", "score_cli"),
    ("ceiling", "ceiling", "ceiling_cli"),
    ("knowledge", "knowledge", "knowledge_cli"),
    ("vote", "vote", "vote_cli"),
    ("augment", "augment", "augment_cli"),
    ("env", "env", "env_cli"),
    ("detect", "detect", "detect_cli"),
    ("train", "train", "train_cli"),
    ("predict", "predict", "predict_cli"),
    ("models", "models", "app"),
]
