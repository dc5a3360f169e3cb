"""2D images in a folder, labels in a CSV (e.g. the study's glaucoma set: ``Class,Class_Int,Filename``).

The CSV helpers here (:func:`read_table`, :func:`labels_from_frame`, :func:`split_frame`) serve
the NIfTI loader too. Rows are named by their line in the file (the header is line 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from imbal.data.dataset import Splits, check_splits, exc_text, make_splits, stratified_split
from imbal.data.folds import grouped_split
from imbal.errors import DataError, MissingFileError
from imbal.naming import SPLITS, class_names


def lines(mask: np.ndarray, limit: int = 5) -> str:
    """``line 7`` / ``3 rows: lines 2, 5, 9``: where in the CSV the rows of ``mask`` are."""
    rows = np.flatnonzero(mask) + 2
    if len(rows) == 1:
        return f"line {rows[0]}"
    shown = ", ".join(map(str, rows[:limit])) + (", ..." if len(rows) > limit else "")
    return f"{len(rows)} rows: lines {shown}"


def read_table(csv: str | Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read ``csv``; each of ``columns`` (column -> the argument that named it) must exist, without empty cells."""
    csv = Path(csv)
    if not csv.is_file():
        raise MissingFileError(f"no CSV file at {csv}")
    try:
        df = pd.read_csv(csv)
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{csv} is empty; expected a header row with the columns {list(columns)} and one row per sample"
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:  # pandas raises ParserError, UnicodeDecodeError, csv.Error, ... for bad bytes
        raise DataError(f"{csv} is not a readable CSV ({exc_text(exc)})") from exc
    for column, argument in columns.items():
        if column not in df.columns:
            raise DataError(
                f"{csv}: {argument.split('_')[0]} column {column!r} not in CSV columns {list(df.columns)}; "
                f"set {argument} to the right column"
            )
    if df.empty:
        raise DataError(f"{csv} has a header but no rows")
    for column in columns:
        empty = (df[column].isna() | (df[column].astype(str).str.strip() == "")).to_numpy()
        if empty.any():
            raise DataError(f"{csv}: empty {column!r} cell ({lines(empty)}); fill it or drop the row")
    return df


def _check_name_pairs(
    ints: np.ndarray, names: pd.Series, label_column: str, names_column: str, csv: str | Path
) -> None:
    """One integer, one name: a typo ('eraly') or a stray integer must not become a class of its own."""
    pairs = pd.DataFrame({"i": ints, "n": names.to_numpy()})
    problems = []
    for key, other in (("i", "n"), ("n", "i")):
        for value, group in pairs.groupby(key, sort=True):
            counts = group[other].value_counts()
            if len(counts) > 1:
                parts = ", ".join(
                    f"{v!r} ({lines((pairs[key] == value).to_numpy() & (pairs[other] == v).to_numpy())})"
                    for v in counts.index
                )
                col = label_column if key == "i" else names_column
                problems.append(f"{col} {value!r} goes with {parts}")
    if problems:
        raise DataError(
            f"{csv}: {label_column!r} and {names_column!r} disagree: {'; '.join(problems[:4])}; each class "
            "needs one integer and one name"
        )


def labels_from_frame(
    df: pd.DataFrame,
    label_column: str,
    class_names_column: str | None,
    csv: str | Path = "",
    classes: Sequence[str] | None = None,
) -> tuple[torch.Tensor, list[str]]:
    """Labels and class names from a CSV: integer labels 0..K-1, or names (sorted, or ``classes``' order)."""
    if classes is not None and (
        isinstance(classes, str) or len(classes) < 2 or len(set(map(str, classes))) != len(classes)
    ):
        raise DataError(f"classes must be a list of at least two distinct class names, got {classes!r}")
    raw = df[label_column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        ints = _class_indices(raw, label_column, csv)
        named = (
            bool(class_names_column)
            and class_names_column != label_column
            and class_names_column in df.columns
        )
        names_column = df[class_names_column] if named else None
        return torch.from_numpy(ints), _index_names(ints, names_column, label_column, csv, classes)
    values = raw.astype(str)
    names = [str(c) for c in classes] if classes is not None else sorted(values.unique())
    lookup = {n: i for i, n in enumerate(names)}
    unknown = ~values.isin(list(lookup)).to_numpy()
    if unknown.any():
        raise DataError(
            f"{csv}: {label_column!r} values {sorted(set(values[unknown].tolist()))[:3]} ({lines(unknown)}) are not "
            f"among the declared classes {names}"
        )
    return torch.tensor([lookup[v] for v in values], dtype=torch.int64), names


def _class_indices(raw: pd.Series, label_column: str, csv: str | Path) -> np.ndarray:
    """A numeric label column as int64 class indices: whole numbers, >= 0, of a sane size."""
    values = raw.to_numpy(dtype=np.float64)
    for bad, what in (
        (~np.isfinite(values) | (values != np.round(values)), "are not whole numbers"),
        (values < 0, "are negative"),
        (values >= 2**62, "are too large to be class indices"),
    ):
        if bad.any():
            raise DataError(
                f"{csv}: {label_column!r} values {sorted(set(raw[bad].tolist()))[:3]} ({lines(bad)}) {what}; "
                "expected class indices 0..K-1"
            )
    return values.astype(np.int64)


def _index_names(
    ints: np.ndarray,
    names_column: pd.Series | None,
    label_column: str,
    csv: str | Path,
    classes: Sequence[str] | None,
) -> list[str]:
    """The class names of integer labels: declared (``classes``), from a names column, or the indices."""
    if names_column is not None:
        empty = names_column.isna().to_numpy()
        if empty.any():
            raise DataError(f"{csv}: empty {names_column.name!r} cell ({lines(empty)}); fill it")
        _check_name_pairs(ints, names_column.astype(str), label_column, str(names_column.name), csv)
    if classes is not None:
        names = [str(c) for c in classes]
        outside = ints >= len(names)
        if outside.any():
            raise DataError(
                f"{csv}: {label_column!r} values {sorted(set(ints[outside].tolist()))[:3]} ({lines(outside)}) lie "
                f"outside the {len(names)} declared classes 0..{len(names) - 1}"
            )
        return names
    k = int(ints.max()) + 1
    present = np.unique(ints)
    if len(present) < k:
        absent = sorted(set(range(min(k, len(present) + 8))) - set(present.tolist()))
        beyond = ints > absent[0]
        raise DataError(
            f"{csv}: {label_column!r} must hold 0..K-1 without gaps; it has no {absent[:8]} but "
            f"{sorted(set(ints[beyond].tolist()))[:5]} ({lines(beyond)}); fix those labels or declare the "
            "classes"
        )
    if names_column is None:
        return class_names(None, k)
    pairs = dict(zip(ints.tolist(), names_column.astype(str)))
    return [pairs[i] for i in range(k)]


def split_frame(
    df: pd.DataFrame,
    labels: torch.Tensor,
    split_column: str | None,
    fractions: Sequence[float],
    seed: int,
    csv: str | Path = "",
    groups: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Indices per split: from ``split_column`` (train/val/test) when given, else stratified (by group when given)."""
    if split_column:
        if split_column not in df.columns:
            raise DataError(f"{csv}: split column {split_column!r} not in CSV columns {list(df.columns)}")
        values = df[split_column].astype(str).str.strip().str.lower()
        bad = ~values.isin(SPLITS).to_numpy()
        if bad.any():
            raise DataError(
                f"{csv}: split column {split_column!r} must hold train/val/test, got "
                f"{sorted(set(df[split_column][bad].astype(str).tolist()))[:5]} ({lines(bad)})"
            )
        return {s: torch.from_numpy(np.flatnonzero(values.to_numpy() == s)) for s in SPLITS}
    if len(fractions) != 3:
        raise DataError(f"fractions must be three numbers (train, val, test), got {fractions}")
    if groups is not None:
        parts = grouped_split(labels.numpy(), groups, tuple(fractions), seed)
    else:
        parts = stratified_split(labels, tuple(fractions), seed)
    return dict(zip(SPLITS, parts))


def group_ids(df: pd.DataFrame, group_column: str | None, csv: str | Path) -> np.ndarray | None:
    """The CSV's group (patient) column as text ids, or None; an empty cell is an error."""
    if group_column is None:
        return None
    values = df[group_column]
    empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise DataError(f"{csv}: group column {group_column!r} is empty at {lines(empty)}")
    return values.astype(str).str.strip().to_numpy()


def check_groups_apart(groups: np.ndarray, idx: dict[str, torch.Tensor], where: str) -> None:
    """A group (patient) in two splits would let a model see its test patient: refused, naming one."""
    seen: dict[str, str] = {}
    for s in SPLITS:
        for g in set(groups[idx[s].numpy()].tolist()):
            if g in seen and seen[g] != s:
                raise DataError(
                    f"{where}: group {g!r} has images in both {seen[g]} and {s}; a group must stay in one split"
                )
            seen[g] = s


def frame_splits(
    csv: Path,
    df: pd.DataFrame,
    labels: torch.Tensor,
    names: list[str],
    split: tuple[str | None, Sequence[float], int],
    sample_shape: tuple[int, ...],
    groups: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Split indices, with the cross-split checks run before any image is decoded (fail fast)."""
    idx = split_frame(df, labels, *split, csv=csv, groups=groups)
    if groups is not None:
        check_groups_apart(groups, idx, str(csv))
    check_splits(
        {s: labels[idx[s]] for s in SPLITS},
        {s: (len(idx[s]), *sample_shape) for s in SPLITS},
        len(names),
        names,
        str(csv),
    )
    return idx


def _png_16_bit_colour(path: Path) -> bool:
    """Whether the PNG's header says 16 bits per sample with colour or alpha (colour types 2, 4, 6)."""
    with open(path, "rb") as f:
        head = f.read(26)  # signature (8), IHDR length and type (8), width, height (8), depth, colour type
    return len(head) == 26 and head[24] == 16 and head[25] in (2, 4, 6)


def read_image(path: Path, size: int | tuple[int, int], channels: int, where: str = "") -> np.ndarray:
    """An image file as uint8 ``(channels, H, W)``: gray (1) or RGB (3), resized bilinearly to ``size``.

    ``size`` is one side (square) or ``(H, W)``.
    """
    from PIL import Image

    height, width = (size, size) if isinstance(size, int | np.integer) else size
    try:
        with Image.open(path) as im:
            if im.format == "PNG" and _png_16_bit_colour(path):
                # PIL reads 16-bit colour PNGs as 8-bit RGB(A) keeping the high byte: 200 becomes 0
                raise DataError(
                    f"{path}{where} is a 16-bit colour PNG, which PIL reads by its high byte only; expected 8-bit "
                    "values (convert the image to 8 bits per channel first)"
                )
            if im.mode.startswith(("I", "F")):
                # PIL's 16-bit/float to 8-bit conversion clips at 255 (and floats in [0, 1] to {0, 1})
                raw = np.asarray(im)
                if raw.size and (raw.min() < 0 or raw.max() > 255 or (raw != np.round(raw)).any()):
                    raise DataError(
                        f"{path}{where}: {im.mode} pixels span [{raw.min():g}, {raw.max():g}]; expected 8-bit "
                        "values 0..255 (convert the image to 8 bits first)"
                    )
            resized = im.convert("RGB" if channels == 3 else "L").resize(
                (int(width), int(height)), Image.Resampling.BILINEAR
            )
            arr = np.asarray(resized, dtype=np.uint8)
    except (MemoryError, DataError):
        raise
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ... for bad files
        raise DataError(
            f"{path}{where} is not a readable image ({exc_text(exc)}); replace it or drop its row"
        ) from exc
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_image_folder(
    csv: str | Path,
    *,
    image_dir: str | Path | None = None,
    filename_column: str = "Filename",
    label_column: str = "Class_Int",
    class_names_column: str | None = "Class",
    split_column: str | None = None,
    group_column: str | None = None,
    classes: list[str] | None = None,
    size: int = 240,
    channels: int = 3,
    fractions: tuple[float, float, float] = (0.65, 0.1, 0.25),
    seed: int = 0,
    name: str | None = None,
) -> Splits:
    """Read every image listed in ``csv`` (resized to ``size``), into uint8 memory.

    Splits come from ``split_column`` or a stratified split with ``fractions`` (train, val, test);
    ``group_column`` (patient ids): a group stays in one split and one cross-validation fold.
    the study used 3/4 train and 1/4 test, here a part of its train becomes validation. The
    classes are ``classes`` when given (names in label order), else 0..K-1 for an integer label
    column (named by ``class_names_column``) or the sorted names of a text label column.
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (gray) or 3 (RGB), got {channels!r}")
    if not isinstance(size, int | np.integer) or size < 1:
        raise DataError(f"size must be a positive integer (pixels), got {size!r}")
    csv = Path(csv)
    columns = {filename_column: "filename_column", label_column: "label_column"}
    df = read_table(
        csv,
        columns
        | ({split_column: "split_column"} if split_column else {})
        | ({group_column: "group_column"} if group_column else {}),
    )
    image_dir = Path(image_dir) if image_dir else csv.parent
    labels, names = labels_from_frame(df, label_column, class_names_column, csv, classes)
    groups = group_ids(df, group_column, csv)
    idx = frame_splits(
        csv, df, labels, names, (split_column, fractions, seed), (channels, size, size), groups
    )
    files = [image_dir / str(f) for f in df[filename_column]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise MissingFileError(
            f"{len(missing)} image(s) listed in {csv} are missing in {image_dir}: {missing[:3]}"
        )
    images = torch.from_numpy(
        np.stack([read_image(f, size, channels, f" ({csv} line {i + 2})") for i, f in enumerate(files)])
    )
    return make_splits(
        {s: images[idx[s]] for s in SPLITS},
        {s: labels[idx[s]] for s in SPLITS},
        num_classes=len(names),
        class_names=names,
        name=name or csv.stem,
        source=str(csv),
        groups=None if groups is None else {s: groups[idx[s].numpy()] for s in SPLITS},
    )
