"""manage.py import_config FILE: validate a configuration document, then apply it in one transaction."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.configuration.errors import ConfigError
from apps.configuration.parser import load_document
from apps.configuration.services import config_import


class Command(BaseCommand):
    help = (
        "Import a configuration document (JSON or YAML). The whole document is validated first; "
        "then everything is written in one transaction, or nothing is."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The document; its format is taken from the extension or the content.")
        parser.add_argument("--dry-run", action="store_true", help="Show what would change and write nothing.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also delete rows of the sections in the document that the document no longer lists.",
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        try:
            loaded = load_document(raw, name=path.name)
            report = config_import(
                document=loaded.data,
                dry_run=options["dry_run"],
                prune=options["prune"],
                source_name=path.name,
                digest=loaded.sha256,
            )
        except ConfigError as exc:
            raise CommandError("\n".join([exc.message, *(f"  {error}" for error in exc.errors)])) from None
        self.stdout.write("\n".join(report.lines()))
