"""manage.py export_config: write the configuration (systems … source profiles) as one JSON or YAML document."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.configuration.errors import ConfigError
from apps.configuration.parser import FORMATS, YAML, detect_format, dump_document
from apps.configuration.services import config_export


class Command(BaseCommand):
    help = (
        "Export the configuration (systems, ownership rules, value maps, rate cards, source profiles) as JSON or YAML."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=FORMATS, help="Default: from the output file's extension, else yaml.")
        parser.add_argument("--output", help="File to write (default: standard output).")
        parser.add_argument("--sections", help="Comma-separated sections to export, e.g. systems,rate_cards.")
        parser.add_argument(
            "--include-builtin",
            action="store_true",
            help="Also export the source profiles shipped with the product (marked builtin: true).",
        )

    def handle(self, *args, **options):
        sections = [s.strip() for s in options["sections"].split(",") if s.strip()] if options["sections"] else None
        output = options["output"]
        fmt = options["format"] or (detect_format(output, "") if output else YAML)
        try:
            document = config_export(sections=sections, include_builtin=options["include_builtin"])
            text = dump_document(document, format=fmt)
        except ConfigError as exc:
            raise CommandError("\n".join(str(error) for error in exc.errors)) from None
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {output}")
        else:
            self.stdout.write(text, ending="")
