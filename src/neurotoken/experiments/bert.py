"""SpikingBERT on docstring modules: the conventional twin (the teacher), the spiking encoder trained
without distillation, and the spiking encoder distilled from the twin (eq. (83)), starting from the
twin's weights, on the labelled texts (plus, optionally, a transfer set of unlabelled docstrings of
other standard-library modules, the teacher's outputs their only target), optionally after masked-byte
pre-training, against the majority class and logistic regression on byte counts. Every model and
baseline sees the same split, drawn per seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import fmean

import torch
from torch import nn

from ..accounting import get_profile
from ..data.baselines import bag_of_bytes, logistic_regression, majority
from ..data.docstrings import IGNORE, MODULES, DocstringModules, docstring_modules, mask_bytes, transfer_texts
from ..learning.bptt import FitConfig, Trainer, cross_entropy, resolve_device
from ..learning.distill import Distillation
from ..metrics import accuracy
from ..models.bert import masked_lm_loss
from .config import accepted, each, integer, nested, one_of, optional, real, validate
from .runner import Results, Runner, recipe
from .task import Task

ROLES = ("twin", "spiking", "distilled")  # teacher, student without and with distillation
STUDENT_INITS = ("twin", "random")  # the distilled student starts from the twin's weights, or from its own draw
FIT = FitConfig(epochs=40, batch_size=32, lr=1e-2, weight_decay=5e-2)  # every model's fit by default
LABELS = {"twin": "BERT twin (teacher)", "spiking": "SpikingBERT", "distilled": "SpikingBERT distilled"}


@dataclass(frozen=True)
class BertDistillation:
    """SpikingBERT on docstring modules: twin, spiking and spiking distilled from the twin, vs baselines."""

    k: int = 4  # classes: the first k pinned modules
    max_len: int = 128  # bytes per docstring
    per_module: int = 70
    test_per_module: int = 20
    d_model: int = 64
    heads: int = 4
    layers: int = 1
    mlp_ratio: int = 2
    T: int = 4  # virtual time steps of the spiking encoder
    ngram: int = 5  # bytes each position's embedding sums (centred on it)
    dropout: float = 0.3  # the twin's embedding dropout while training
    spiking_dropout: float = 0.3  # the spiking encoders' embedding dropout while training
    pretrain_epochs: int = 0  # masked-byte pre-training on the training texts before each fit (0: none)
    mask_p: float = 0.15  # masked fraction of the pre-training bytes
    temperature: float = 4.0  # distillation's softening T
    alpha: float = 0.9  # weight of the distillation term against the labels' cross-entropy
    hidden_weight: float = 0.0  # weight of the hidden-state match (0: logits only)
    transfer: int = 0  # unlabelled docstrings the distilled student also learns from the teacher (0: none)
    student_init: str = "twin"  # the distilled student's start: "twin" (the trained twin's weights) or "random"
    fit: FitConfig = FIT  # every model's
    distill_fit: FitConfig | None = replace(FIT, epochs=20)  # the distilled student's (None: fit)
    seeds: tuple[int, ...] = (0, 1, 2)  # split and initial draw of each repeat
    student: str = "distilled"  # the main job's neuromorphic row: "distilled" or "spiking" (no distillation)
    count_batch: int = 32  # test docstrings counted per model
    profile: str = "cmos45"  # energy profile of the counts
    CHECKS = {"k": integer(2), "max_len": integer(), "per_module": integer(2), "test_per_module": integer(),
              "d_model": integer(), "heads": integer(), "layers": integer(), "mlp_ratio": integer(), "T": integer(),
              "ngram": integer(), "dropout": real(low=0.0, high=1.0, high_open=True),
              "spiking_dropout": real(low=0.0, high=1.0, high_open=True), "pretrain_epochs": integer(0),
              "mask_p": real(low=0.0, high=1.0, low_open=True),
              "temperature": real(low=0.0, low_open=True), "alpha": real(low=0.0, high=1.0),
              "hidden_weight": real(low=0.0), "transfer": integer(0), "student_init": one_of(STUDENT_INITS),
              "fit": nested(FitConfig),
              "distill_fit": optional(nested(FitConfig)), "seeds": each(integer(0), unique=True),
              "student": one_of(ROLES[1:]), "count_batch": integer(), "profile": accepted(get_profile)}
    RELATIONS = (("k", lambda c: c.k <= len(MODULES), f"be <= {len(MODULES)} (the pinned modules), got {{c.k}}"),
                 ("test_per_module", lambda c: c.test_per_module < c.per_module,
                  "be < per_module ({c.per_module}), got {c.test_per_module}"),
                 ("heads", lambda c: c.d_model % c.heads == 0, "divide d_model ({c.d_model}), got {c.heads}"))

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> BertDistillation:
        """Three modules, short texts, a tiny encoder, one epoch for every model, one seed, no transfer set."""
        fit = FitConfig(epochs=1, batch_size=16, lr=1e-2)  # distill_fit too: a None would not survive config.toml
        return cls(**{"k": 3, "max_len": 32, "per_module": 12, "test_per_module": 4, "d_model": 8, "heads": 2,
                      "T": 2, "transfer": 0, "fit": fit, "distill_fit": fit, "seeds": (0,), "count_batch": 4,
                      **changes})

    def data(self, seed: int) -> DocstringModules:
        """The split of ``seed``."""
        return docstring_modules(self.k, self.max_len, seed, per_module=self.per_module,
                                 test_per_module=self.test_per_module)

    def model_kwargs(self, spiking: bool) -> dict:
        """The :class:`~neurotoken.models.SpikingBERT` keyword arguments of the twin or the spiking encoder."""
        return {"vocab": 256, "d_model": self.d_model, "heads": self.heads, "layers": self.layers,
                "max_len": self.max_len, "classes": self.k, "mlp_ratio": self.mlp_ratio, "T": self.T,
                "spiking": spiking, "ngram": self.ngram, "dropout": self.spiking_dropout if spiking else self.dropout}

    def transfer_set(self, seed: int) -> torch.Tensor | None:
        """The distilled student's ``transfer`` unlabelled docstrings for ``seed`` (None when 0)."""
        return transfer_texts(self.transfer, self.max_len, seed) if self.transfer else None

    def fit_for(self, x: torch.Tensor, y: torch.Tensor, teacher: nn.Module | None = None,
                transfer: torch.Tensor | None = None) -> Callable[[nn.Module], list[float]]:
        """A Runner fit: masked-byte pre-training on ``x`` (``pretrain_epochs``), then classification on
        (x, y) by cross-entropy or, with a ``teacher``, by :class:`Distillation` from it (``distill_fit``)
        over (x, y) and the unlabelled texts ``transfer``, the student first taking the teacher's weights
        when ``student_init`` is "twin"; returns the classification epochs' losses."""
        config = self.fit
        if teacher is not None:
            loss_fn = Distillation(teacher, self.temperature, self.alpha, self.hidden_weight, transfer=True)
            config = self.distill_fit or self.fit
            if transfer is not None:
                x, y = torch.cat((x, transfer.to(x.device))), torch.cat((y, y.new_full((len(transfer),), IGNORE)))
        else:
            loss_fn = cross_entropy

        def fit(model: nn.Module) -> list[float]:
            if teacher is not None:
                teacher.to(resolve_device(config.device, model))
                if self.student_init == "twin":
                    model.load_twin(teacher)
            if self.pretrain_epochs:
                masked, targets = mask_bytes(x, self.mask_p, config.seed)
                Trainer(model, replace(config, epochs=self.pretrain_epochs), loss_fn=masked_lm_loss).fit(masked,
                                                                                                        targets)
            losses = Trainer(model, config, loss_fn=loss_fn).fit(x, y)
            model.to(x.device)  # evaluated where the data lives, as the Runner leaves a BPTT fit
            return losses
        return fit

    def fit_of(self, role: str, data: DocstringModules, seed: int, twin: nn.Module | None = None
               ) -> Callable[[nn.Module], list[float]]:
        """The Runner fit of ``role`` on the split ``data`` of ``seed``: :meth:`fit_for` on the labelled
        texts, for the distilled student from ``twin`` over them and the seed's transfer set."""
        if role == "distilled":
            return self.fit_for(data.x_train, data.y_train, twin, self.transfer_set(seed))
        return self.fit_for(data.x_train, data.y_train)


@recipe(BertDistillation)
def run_bert(config: BertDistillation, runner: Runner) -> Results:
    """Table "rows", per seed: the majority class, logistic regression on byte counts, then the twin,
    the spiking encoder and the distilled one {"seed", "model", "test_accuracy", "energy_j",
    "final_loss", "train_seconds", "test_size"}; table "summary": per model the mean test accuracy
    over the seeds, the per-seed figures and, for the encoders, the mean energy per inference."""
    from .main_job import measure  # the main job's counter: energy per inference under one profile

    for seed in config.seeds:
        data = config.data(seed)
        common = {"seed": seed, "test_size": len(data.y_test)}
        runner.emit({**common, "model": "majority class", "test_accuracy": majority(data.y_train, data.y_test)})
        runner.emit({**common, "model": "logistic regression (byte counts)", "test_accuracy": logistic_regression(
            bag_of_bytes(data.x_train), data.y_train, bag_of_bytes(data.x_test), data.y_test)})
        teacher = None
        for role in ROLES:
            spiking = role != "twin"
            trained = runner.train(f"{role} seed {seed}", ("SpikingBERT", config.model_kwargs(spiking)),
                                   config.fit_of(role, data, seed, teacher), seed=seed)
            if role == "twin":
                teacher = trained.model
            runner.emit({**common, "model": LABELS[role], "test_accuracy": accuracy(trained.model, data.x_test,
                                                                                    data.y_test),
                         "energy_j": measure(trained.model, data.x_test[:config.count_batch], config.profile)["energy_j"],
                         "final_loss": trained.losses[-1], "train_seconds": trained.seconds})
    rows = runner.tables["rows"]
    for label in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == label]
        per_seed = [r["test_accuracy"] for r in mine]
        energy = {"mean_energy_j": fmean(r["energy_j"] for r in mine)} if "energy_j" in mine[0] else {}
        runner.emit({"model": label, "mean_test_accuracy": fmean(per_seed), "per_seed": per_seed,
                     "test_size": rows[0]["test_size"], **energy}, "summary")
    return runner.results()


def task(config: BertDistillation, n: int) -> Task:
    """The main job's spiking-bert row on the split of the first seed: the twin, then the spiking
    encoder ``student`` (distilled from the twin by ``fit_for``, or not), judged by test accuracy,
    counted on ``n`` test docstrings."""
    data = config.data(config.seeds[0])
    models = [(role, LABELS[role], "SpikingBERT", config.model_kwargs(role != "twin"))
              for role in ("twin", config.student)]
    return Task("docstring modules (SpikingBERT)", "accuracy", True, "inference", models, config.fit, data.x_train,
                data.y_train, lambda m: accuracy(m, data.x_test, data.y_test), data.x_test[:n],
                fit_for=lambda role, twin: config.fit_of(role, data, config.seeds[0], twin),
                baseline=("logistic regression (byte counts)", lambda: logistic_regression(
                    bag_of_bytes(data.x_train), data.y_train, bag_of_bytes(data.x_test), data.y_test)))


__all__ = ["BertDistillation", "run_bert", "task", "ROLES"]
