"""The labelled query set of bench/search_quality.py, written by hand for this project.

LEXICON lists, for each word the queries ask about, the forms a reader or a post may use
(Russian cases and numbers, English plurals and verb forms): the judge of which posts
hold a word, independent of any stemmer. QUERIES are (kind, query, label): a word of the
lexicon (``a+b`` for posts holding both), a key of PAPERS (posts linking that arXiv id),
a tag, or ``zh:`` and a Chinese word (posts whose text contains it).
"""

from __future__ import annotations

LEXICON: dict[str, tuple[str, list[str]]] = {
    "регуляризация": ("ru", ["регуляризация", "регуляризации", "регуляризацию", "регуляризацией",
                             "регуляризаций", "регуляризациям"]),
    "трансформер": ("ru", ["трансформер", "трансформера", "трансформеру", "трансформером", "трансформеры",
                           "трансформеров", "трансформерам", "трансформерах"]),
    "голова": ("ru", ["голова", "головы", "голове", "голову", "головой", "голов", "головам", "головами",
                      "головах"]),
    "внимание": ("ru", ["внимание", "внимания", "вниманию", "вниманием", "внимании"]),
    "модель": ("ru", ["модель", "модели", "моделью", "моделей", "моделям", "моделями", "моделях"]),
    "сеть": ("ru", ["сеть", "сети", "сетью", "сетей", "сетям", "сетями", "сетях"]),
    "обучение": ("ru", ["обучение", "обучения", "обучению", "обучением", "обучении"]),
    "слой": ("ru", ["слой", "слоя", "слою", "слоем", "слое", "слои", "слоев", "слоям", "слоями"]),
    "градиент": ("ru", ["градиент", "градиента", "градиенту", "градиентом", "градиенте", "градиенты",
                        "градиентов"]),
    "статья": ("ru", ["статья", "статьи", "статье", "статью", "статьей", "статей", "статьям"]),
    "выборка": ("ru", ["выборка", "выборки", "выборке", "выборку", "выборкой", "выборок"]),
    "эмбеддинг": ("ru", ["эмбеддинг", "эмбеддинга", "эмбеддинги", "эмбеддингов", "эмбеддингами"]),
    "оптимизатор": ("ru", ["оптимизатор", "оптимизатора", "оптимизатором", "оптимизаторы", "оптимизаторов"]),
    "нейрон": ("ru", ["нейрон", "нейрона", "нейроны", "нейронов", "нейронами"]),
    "признак": ("ru", ["признак", "признака", "признаки", "признаков", "признаками"]),
    "глубокий": ("ru", ["глубокий", "глубокая", "глубокое", "глубокие", "глубоких", "глубоким", "глубокой"]),
    "сверточный": ("ru", ["сверточный", "сверточная", "сверточные", "сверточных", "сверточной"]),
    "head": ("en", ["head", "heads"]),
    "layer": ("en", ["layer", "layers"]),
    "network": ("en", ["network", "networks"]),
    "model": ("en", ["model", "models"]),
    "transformer": ("en", ["transformer", "transformers"]),
    "embedding": ("en", ["embedding", "embeddings"]),
    "gradient": ("en", ["gradient", "gradients"]),
    "optimizer": ("en", ["optimizer", "optimizers"]),
    "train": ("en", ["train", "trains", "trained", "training"]),
    "learn": ("en", ["learn", "learns", "learned", "learning"]),
    "prune": ("en", ["prune", "prunes", "pruned", "pruning"]),
    "benchmark": ("en", ["benchmark", "benchmarks", "benchmarked", "benchmarking"]),
    "dataset": ("en", ["dataset", "datasets"]),
    "neuron": ("en", ["neuron", "neurons"]),
    "query": ("en", ["query", "queries"]),
    "attention": ("en", ["attention"]),
}

PAPERS = {
    "drophead": "2004.13342", "transformer": "1706.03762", "nvae": "2007.03898", "adamw": "1711.05101",
    "universal": "1807.03819", "txl": "1901.02860", "bn": "1502.03167", "optimus": "2004.04092",
    "vae": "1312.6114", "gpt3": "2005.14165",
}

TAGS = {"nlp", "vae", "регуляризация", "трансформеры", "optimization"}
ZH_WORDS = ["注意力", "正则化", "模型", "训练", "隐变量", "数据集", "变分自编码器"]

QUERIES: list[tuple[str, str, str]] = [
    # another form than the dictionary one
    ("inflected", "регуляризации", "регуляризация"), ("inflected", "регуляризацией", "регуляризация"),
    ("inflected", "трансформеров", "трансформер"), ("inflected", "трансформером", "трансформер"),
    ("inflected", "головы", "голова"), ("inflected", "головой", "голова"),
    ("inflected", "вниманием", "внимание"), ("inflected", "моделями", "модель"),
    ("inflected", "сетей", "сеть"), ("inflected", "обучением", "обучение"),
    ("inflected", "слоев", "слой"), ("inflected", "градиентом", "градиент"),
    ("inflected", "статью", "статья"), ("inflected", "выборки", "выборка"),
    ("inflected", "глубоких", "глубокий"), ("inflected", "сверточной", "сверточный"),
    ("inflected", "trained", "train"), ("inflected", "learning", "learn"),
    ("inflected", "pruned", "prune"), ("inflected", "benchmarking", "benchmark"),
    # plurals
    ("plural", "heads", "head"), ("plural", "layers", "layer"), ("plural", "networks", "network"),
    ("plural", "models", "model"), ("plural", "transformers", "transformer"),
    ("plural", "embeddings", "embedding"), ("plural", "gradients", "gradient"),
    ("plural", "optimizers", "optimizer"), ("plural", "queries", "query"), ("plural", "datasets", "dataset"),
    ("plural", "эмбеддинги", "эмбеддинг"), ("plural", "оптимизаторы", "оптимизатор"),
    ("plural", "нейроны", "нейрон"), ("plural", "признаки", "признак"),
    # the dictionary form itself
    ("exact", "head", "head"), ("exact", "регуляризация", "регуляризация"), ("exact", "трансформер", "трансформер"),
    ("exact", "attention", "attention"), ("exact", "model", "model"), ("exact", "голова", "голова"),
    ("exact", "neuron", "neuron"), ("exact", "dataset", "dataset"),
    # several words, each in some form
    ("multiword", "головы трансформеров", "голова+трансформер"), ("multiword", "обучение моделей", "обучение+модель"),
    ("multiword", "слои сети", "слой+сеть"), ("multiword", "градиенты оптимизатора", "градиент+оптимизатор"),
    ("multiword", "pruned heads", "prune+head"), ("multiword", "training transformers", "train+transformer"),
    ("multiword", "learned embeddings", "learn+embedding"), ("multiword", "gradient optimizers", "gradient+optimizer"),
    # paper titles
    ("title", "Scheduled DropHead", "drophead"), ("title", "Attention Is All You Need", "transformer"),
    ("title", "Deep Hierarchical Variational Autoencoder", "nvae"),
    ("title", "Decoupled Weight Decay Regularization", "adamw"), ("title", "Universal Transformers", "universal"),
    ("title", "Transformer-XL", "txl"), ("title", "Batch Normalization", "bn"),
    ("title", "Optimus organizing sentences", "optimus"), ("title", "Auto-Encoding Variational Bayes", "vae"),
    ("title", "Language Models are Few-Shot Learners", "gpt3"),
    # tags
    ("tag", "регуляризация", "регуляризация"), ("tag", "трансформеры", "трансформеры"), ("tag", "nlp", "nlp"),
    ("tag", "vae", "vae"), ("tag", "regularization", "regularization"), ("tag", "optimization", "optimization"),
    # Chinese words (segmentation, no stems)
    ("zh", "注意力", "zh:注意力"), ("zh", "正则化", "zh:正则化"), ("zh", "变分自编码器", "zh:变分自编码器"),
    ("zh", "模型", "zh:模型"), ("zh", "训练", "zh:训练"), ("zh", "隐变量", "zh:隐变量"),
]

MULTIWORD = [label.split("+") for kind, _, label in QUERIES if kind == "multiword"]
