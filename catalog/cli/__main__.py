from catalog.cli import app

app(prog_name="digest")
