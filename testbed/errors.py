"""User-facing errors: a short message naming the field and the fix, exit code 2, no traceback."""


class UserError(Exception):
    """Bad input from the user (config, dataset, model, request). The CLI prints it and exits 2."""

    def __init__(self, message: str, fix: str | None = None):
        self.message = message
        self.fix = fix
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)
