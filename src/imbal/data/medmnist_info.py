"""Official MedMNIST v3 / MedMNIST+ files: MD5 per size, split sizes and class names.

Copied from the ``INFO`` table of the official ``medmnist`` package (v3, Zenodo record 10519652;
class names from ``INFO[name]["label"]``). Every file, local or downloaded, is checked against
these MD5s before use.
"""

from __future__ import annotations

from dataclasses import dataclass

from imbal.naming import SPLITS

ZENODO_RECORD = "https://zenodo.org/records/10519652/files"


@dataclass(frozen=True)
class MedMNISTInfo:
    """One MedMNIST set: shape, classes, the MD5 of each image size and the official split sizes.

    ``md5`` maps an image size (28, 64, 128, 224) to its file's MD5; ``n_samples`` maps each split
    to its sample count; ``task`` is the ``INFO`` task (``multi-label`` sets are refused on load).
    """

    name: str
    spatial_dims: int
    channels: int
    num_classes: int
    md5: dict[int, str]
    n_samples: dict[str, int]
    task: str
    class_names: tuple[str, ...] = ()

    @property
    def sizes(self) -> tuple[int, ...]:
        """The image sizes with an official file, ascending."""
        return tuple(sorted(self.md5))

    @property
    def ordinal(self) -> bool:
        """The classes are ordered grades (RetinaMNIST's diabetic-retinopathy grades 0-4)."""
        return self.task == "ordinal-regression"

    def filename(self, size: int = 28) -> str:
        """The official file name (``name.npz`` for 28 px, ``name_64.npz`` etc. otherwise)."""
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

    def url(self, size: int = 28) -> str:
        """The Zenodo download URL of the file of ``size``."""
        return f"{ZENODO_RECORD}/{self.filename(size)}?download=1"


_ORGANS = (
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
)

# INFO[name]["label"] of medmnist 3.0.2, in label order (OrganMNIST3D orders its organs differently)
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "pathmnist": (
        "adipose",
        "background",
        "debris",
        "lymphocytes",
        "mucus",
        "smooth muscle",
        "normal colon mucosa",
        "cancer-associated stroma",
        "colorectal adenocarcinoma epithelium",
    ),
    "chestmnist": (
        "atelectasis",
        "cardiomegaly",
        "effusion",
        "infiltration",
        "mass",
        "nodule",
        "pneumonia",
        "pneumothorax",
        "consolidation",
        "edema",
        "emphysema",
        "fibrosis",
        "pleural",
        "hernia",
    ),
    "dermamnist": (
        "actinic keratoses and intraepithelial carcinoma",
        "basal cell carcinoma",
        "benign keratosis-like lesions",
        "dermatofibroma",
        "melanoma",
        "melanocytic nevi",
        "vascular lesions",
    ),
    "octmnist": ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
    "pneumoniamnist": ("normal", "pneumonia"),
    "retinamnist": ("0", "1", "2", "3", "4"),
    "breastmnist": ("malignant", "normal, benign"),
    "bloodmnist": (
        "basophil",
        "eosinophil",
        "erythroblast",
        "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
        "lymphocyte",
        "monocyte",
        "neutrophil",
        "platelet",
    ),
    "tissuemnist": (
        "Collecting Duct, Connecting Tubule",
        "Distal Convoluted Tubule",
        "Glomerular endothelial cells",
        "Interstitial endothelial cells",
        "Leukocytes",
        "Podocytes",
        "Proximal Tubule Segments",
        "Thick Ascending Limb",
    ),
    "organamnist": _ORGANS,
    "organcmnist": _ORGANS,
    "organsmnist": _ORGANS,
    "organmnist3d": (
        "liver",
        "kidney-right",
        "kidney-left",
        "femur-right",
        "femur-left",
        "bladder",
        "heart",
        "lung-right",
        "lung-left",
        "spleen",
        "pancreas",
    ),
    "nodulemnist3d": ("benign", "malignant"),
    "adrenalmnist3d": ("normal", "hyperplasia"),
    "fracturemnist3d": ("buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"),
    "vesselmnist3d": ("vessel", "aneurysm"),
    "synapsemnist3d": ("inhibitory synapse", "excitatory synapse"),
}


def _info(
    name: str, dims: int, ch: int, k: int, md5s: tuple[str, ...], n: tuple[int, int, int], task: str
) -> MedMNISTInfo:
    sizes = (28, 64, 128, 224)
    md5 = {s: m for s, m in zip(sizes, md5s) if m != "-"}
    splits = dict(zip(SPLITS, n))
    return MedMNISTInfo(name, dims, ch, k, md5, splits, task, CLASS_NAMES[name])


# name, spatial dims, channels, classes, MD5 for 28/64/128/224 ("-": no such size), split sizes, task
MEDMNIST: dict[str, MedMNISTInfo] = {
    i.name: i
    for i in [
        _info(
            "pathmnist",
            2,
            3,
            9,
            (
                "a8b06965200029087d5bd730944a56c1",
                "55aa9c1e0525abe5a6b9d8343a507616",
                "ac42d08fb904d92c244187169d1fd1d9",
                "2c51a510bcdc9cf8ddb2af93af1eadec",
            ),
            (89996, 10004, 7180),
            "multi-class",
        ),
        _info(
            "chestmnist",
            2,
            1,
            14,
            (
                "02c8a6516a18b556561a56cbdd36c4a8",
                "9de6cd0b934ebb5b7426cfba5efbae16",
                "db107e5590b27930b62dbaf558aebee3",
                "45bd33e6f06c3e8cdb481c74a89152aa",
            ),
            (78468, 11219, 22433),
            "multi-label",
        ),
        _info(
            "dermamnist",
            2,
            3,
            7,
            (
                "0744692d530f8e62ec473284d019b0c7",
                "b70a2f5635c6199aeaa28c31d7202e1f",
                "2defd784463fa5243564e855ed717de1",
                "8974907d8e169bef5f5b96bc506ae45d",
            ),
            (7007, 1003, 2005),
            "multi-class",
        ),
        _info(
            "octmnist",
            2,
            1,
            4,
            (
                "c68d92d5b585d8d81f7112f81e2d0842",
                "e229e9440236b774d9f0dfef9d07bdaf",
                "0a97e76651ace45c5d943ee3f65b63ae",
                "abc493b6d529d5de7569faaef2773ba3",
            ),
            (97477, 10832, 1000),
            "multi-class",
        ),
        _info(
            "pneumoniamnist",
            2,
            1,
            2,
            (
                "28209eda62fecd6e6a2d98b1501bb15f",
                "8f4eceb4ccffa70c672198ea285246c6",
                "05b46931834c231683c68f40c47b2971",
                "d6a3c71de1b945ea11211b03746c1fe1",
            ),
            (4708, 524, 624),
            "binary-class",
        ),
        _info(
            "retinamnist",
            2,
            3,
            5,
            (
                "bd4c0672f1bba3e3a89f0e4e876791e4",
                "afda852cc34dcda56f86ad2b2457dbcc",
                "e48e916a24454daf90583d4e6efb1a18",
                "eae7e3b6f3fcbda4ae613ebdcbe35348",
            ),
            (1080, 120, 400),
            "ordinal-regression",
        ),
        _info(
            "breastmnist",
            2,
            1,
            2,
            (
                "750601b1f35ba3300ea97c75c52ff8f6",
                "742edef2a1fd1524b2efff4bd7ba9364",
                "363e4b3f8d712e9b5de15470a2aaadf1",
                "b56378a6eefa9fed602bb16d192d4c8b",
            ),
            (546, 78, 156),
            "binary-class",
        ),
        _info(
            "bloodmnist",
            2,
            3,
            8,
            (
                "7053d0359d879ad8a5505303e11de1dc",
                "2b94928a2ae4916078ca51e05b6b800b",
                "adace1e0ed228fccda1f39692059dd4c",
                "b718ff6835fcbdb22ba9eacccd7b2601",
            ),
            (11959, 1712, 3421),
            "multi-class",
        ),
        _info(
            "tissuemnist",
            2,
            1,
            8,
            (
                "ebe78ee8b05294063de985d821c1c34b",
                "123ece2eba09d0aa5d698fda57103344",
                "61b955355d7425a89687b06cca3ce0c2",
                "b077128c4a949f0a4eb01517f9037b9c",
            ),
            (165466, 23640, 47280),
            "multi-class",
        ),
        _info(
            "organamnist",
            2,
            1,
            11,
            (
                "68e3f8846a6bd62f0c9bf841c0d9eacc",
                "2dcccc29b88e6da5a01161ef20cda288",
                "eeae80d0a227a8d099027e1b3cfd3b60",
                "50747347e05c87dd3aaf92c49f9f3170",
            ),
            (34561, 6491, 17778),
            "multi-class",
        ),
        _info(
            "organcmnist",
            2,
            1,
            11,
            (
                "b9ceb9546e10131b32923c5bbeaea2b1",
                "3ce34a8724ea6f548e6db4744d03b6a9",
                "773c1f009daa3fe5d9a2a201b2a7ed94",
                "050f5e875dc056f6768abf94ec9995d1",
            ),
            (12975, 2392, 8216),
            "multi-class",
        ),
        _info(
            "organsmnist",
            2,
            1,
            11,
            (
                "9ab87b696fb54e2a387ebe992d6ed5f1",
                "53a6d115339d874c25e309a994ff46d3",
                "ded0c5fa01a95dc4978b956f613e9b8e",
                "b354719e553fbbb2513d5533f52a4cb1",
            ),
            (13932, 2452, 8827),
            "multi-class",
        ),
        _info(
            "organmnist3d",
            3,
            1,
            11,
            ("a0c5a1ff56af4f155c46d46fbb45a2fe", "58a2205adf14a9d0a189cb06dc78bf10", "-", "-"),
            (971, 161, 610),
            "multi-class",
        ),
        _info(
            "nodulemnist3d",
            3,
            1,
            2,
            ("8755a7e9e05a4d9ce80a24c3e7a256f3", "c47c5b7d457bf6332200d2ea6d64ecd8", "-", "-"),
            (1158, 165, 310),
            "binary-class",
        ),
        _info(
            "adrenalmnist3d",
            3,
            1,
            2,
            ("bbd3c5a5576322bc4cdfea780653b1ce", "17721accfe9fb005146a47d33bc54b2f", "-", "-"),
            (1188, 98, 298),
            "binary-class",
        ),
        _info(
            "fracturemnist3d",
            3,
            1,
            3,
            ("6aa7b0143a6b42da40027a9dda61302f", "f01d7e6316aedf4210da0da5b7437b42", "-", "-"),
            (1027, 103, 240),
            "multi-class",
        ),
        _info(
            "vesselmnist3d",
            3,
            1,
            2,
            ("b41fd4f7e7e2feedddb201585ecafa1b", "6bb274a8846e1097066dcd64e2c4520f", "-", "-"),
            (1335, 191, 382),
            "binary-class",
        ),
        _info(
            "synapsemnist3d",
            3,
            1,
            2,
            ("1235b78a3cd6280881dd7850a78eadb6", "43bd14ebf3af9d3dd072446fedc14d5e", "-", "-"),
            (1230, 177, 352),
            "binary-class",
        ),
    ]
}
