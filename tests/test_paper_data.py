"""The paper datasets' fetch scripts and classes, on fabricated miniature archives (no network)."""
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from bierlib.data import CUB200, SOP, Cars196, DatasetNotFoundError, InShop
from bierlib.evaluation import query_gallery_recall

from . import conftest  # noqa: F401  (puts data_scripts/ on sys.path)

import fetch_cars196  # noqa: E402
import fetch_cub200  # noqa: E402
import fetch_inshop  # noqa: E402
import fetch_sop  # noqa: E402

def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def make_tar(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def make_zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cub_files(classes=(1, 2, 101, 102), per_class=2) -> dict[str, bytes]:
    files, images, labels, i = {}, [], [], 0
    for c in classes:
        for k in range(per_class):
            i += 1
            rel = f"{c:03d}.Bird_{c}/Bird_{c}_{k}.jpg"
            files[f"CUB_200_2011/images/{rel}"] = jpeg(i)
            images.append(f"{i} {rel}")
            labels.append(f"{i} {c}")
    files["CUB_200_2011/images.txt"] = "\n".join(images).encode()
    files["CUB_200_2011/image_class_labels.txt"] = "\n".join(labels).encode()
    return files


@pytest.fixture
def cub_archive(tmp_path, monkeypatch):
    path = make_tar(tmp_path / "CUB_200_2011.tgz", cub_files())
    monkeypatch.setattr(fetch_cub200, "MD5", md5(path))  # the miniature stands in for the release
    return path


def test_cub_fetch_split_and_idempotent(tmp_path, cub_archive, capsys):
    root = tmp_path / "data"
    assert fetch_cub200.main(["--root", str(root), "--archive", str(cub_archive)]) == 0
    out = capsys.readouterr()
    assert "train: 2 classes, 4 images; test: 2 classes, 4 images" in out.out
    assert "standard split" in out.err  # a miniature is not the standard split, and it says so
    assert fetch_cub200.main(["--root", str(root), "--archive", str(cub_archive)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    train, test = CUB200(root, "train"), CUB200(root, "test")
    assert len(train) == 4 and set(train.targets.tolist()) == {1, 2}
    assert set(test.targets.tolist()) == {101, 102}
    image, label = test[0]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32 and label == 101
    assert [p.name for p in root.iterdir()] == ["cub200"]  # no staging folder left behind


def test_cub_corrupted_and_truncated_archives(tmp_path, cub_archive, capsys):
    root = tmp_path / "data"
    bad = tmp_path / "bad" / "CUB_200_2011.tgz"
    bad.parent.mkdir()
    bad.write_bytes(cub_archive.read_bytes()[:-200])  # truncated
    assert fetch_cub200.main(["--root", str(root), "--archive", str(bad)]) == 1
    assert "corrupted or truncated: MD5" in capsys.readouterr().err
    assert not (root / "cub200").exists()


def test_escaping_member_is_refused_and_nothing_is_left(tmp_path, monkeypatch, capsys):
    files = cub_files()
    files["../evil.txt"] = b"gotcha"
    path = make_tar(tmp_path / "CUB_200_2011.tgz", files)
    monkeypatch.setattr(fetch_cub200, "MD5", md5(path))
    root = tmp_path / "data"
    assert fetch_cub200.main(["--root", str(root), "--archive", str(path)]) == 1
    assert "refusing archive member '../evil.txt'" in capsys.readouterr().err
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert list(root.iterdir()) == []


def test_missing_dataset_names_the_script(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="fetch_cub200.py --root"):
        CUB200(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        CUB200(tmp_path, "val")


class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self):
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers["Range"] else 0
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_download_resumes_a_partial_file(tmp_path, cub_archive, monkeypatch, capsys):
    RangeHandler.payload = cub_archive.read_bytes()
    server = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(fetch_cub200, "URLS", [f"http://127.0.0.1:{server.server_port}/cub.tgz"])
        root = tmp_path / "data"
        part = root / "downloads" / "CUB_200_2011.tgz.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(RangeHandler.payload[:1000])  # an interrupted earlier download
        assert fetch_cub200.main(["--root", str(root)]) == 0
        assert "resuming" in capsys.readouterr().out
        assert len(CUB200(root, "test")) == 4
    finally:
        server.shutdown()


def test_sop_fetch_and_classes(tmp_path, monkeypatch, capsys):
    files = {}
    for subset, classes in (("train", (1, 2)), ("test", (3, 4, 5))):
        lines = ["image_id class_id super_class_id path"]
        for c in classes:
            for k in range(2):
                rel = f"bicycle_final/{c}_{k}.JPG"
                files[f"Stanford_Online_Products/{rel}"] = jpeg(c * 10 + k)
                lines.append(f"{len(lines)} {c} 1 {rel}")
        files[f"Stanford_Online_Products/Ebay_{subset}.txt"] = "\n".join(lines).encode()
    path = make_zip(tmp_path / "Stanford_Online_Products.zip", files)
    monkeypatch.setattr(fetch_sop, "MD5", md5(path))
    assert fetch_sop.main(["--root", str(tmp_path / "d"), "--mirror", str(tmp_path)]) == 0
    assert "train: 2 classes, 4 images; test: 3 classes, 6 images" in capsys.readouterr().out
    assert len(SOP(tmp_path / "d", "test")) == 6


def test_zip_with_escaping_member_and_non_archive(tmp_path, monkeypatch, capsys):
    path = make_zip(tmp_path / "Stanford_Online_Products.zip",
                    {"/etc/evil": b"x", "a/../../evil": b"y"})
    monkeypatch.setattr(fetch_sop, "MD5", md5(path))
    assert fetch_sop.main(["--root", str(tmp_path / "d"), "--archive", str(path)]) == 1
    assert "refusing archive member" in capsys.readouterr().err
    junk = tmp_path / "junk" / "Stanford_Online_Products.zip"
    junk.parent.mkdir()
    junk.write_bytes(b"not an archive at all")
    monkeypatch.setattr(fetch_sop, "MD5", md5(junk))
    assert fetch_sop.main(["--root", str(tmp_path / "d"), "--archive", str(junk)]) == 1
    assert "neither a zip nor a tar" in capsys.readouterr().err


def test_inshop_partition_and_query_gallery(tmp_path, capsys):
    images, lines = {}, []
    for item, status in ((1, "train"), (2, "train"), (3, "query"), (3, "gallery"), (4, "query"),
                         (4, "gallery")):
        for k in range(2):
            rel = f"img/WOMEN/Dresses/id_{item:08d}/{k:02d}_{status}.jpg"
            images[rel] = jpeg(item * 7 + k)
            lines.append(f"{rel} id_{item:08d} {status}")
    archive = make_zip(tmp_path / "img.zip", images)
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text(f"{len(lines)}\nimage_name item_id evaluation_status\n" + "\n".join(lines))
    root = tmp_path / "d"
    assert fetch_inshop.main(["--root", str(root), "--archive", str(archive),
                              "--archive", str(partition)]) == 0
    assert "query: 2 classes, 4 images; gallery: 2 classes, 4 images" in capsys.readouterr().out
    query, gallery = InShop(root, "query"), InShop(root, "gallery")
    assert query.targets.tolist() == gallery.targets.tolist() == [3, 3, 4, 4]
    assert len(InShop(root, "train")) == 4
    q, yq = torch.tensor([[1.0, 0], [0, 1]]), [3, 4]
    g, yg = torch.tensor([[1.0, 0.05], [1, 0.3], [0, 1]]), [4, 3, 3]
    assert query_gallery_recall(q, yq, g, yg, ks=(1, 2, 3)) == {"recall@1": 0.0, "recall@2": 0.5,
                                                                "recall@3": 1.0}
    with pytest.raises(ValueError, match=r"\[1, G = 3\]"):
        query_gallery_recall(q, yq, g, yg, ks=(4,))


def _mat(path, fields: dict[str, list]):
    from scipy.io import savemat
    n = len(next(iter(fields.values())))
    table = np.zeros((1, n), dtype=[(k, object) for k in fields])
    for k, values in fields.items():
        for i, v in enumerate(values):
            table[0, i][k] = np.array(v)
    savemat(path, {"annotations": table})


@pytest.mark.parametrize("layout", ["original", "devkit"])
def test_cars_both_layouts(tmp_path, layout, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    classes = [1, 1, 98, 99, 99, 196]
    if layout == "original":
        names = [f"car_ims/{i:06d}.jpg" for i in range(1, 7)]
        make_tar(mirror / "car_ims.tgz", {n: jpeg(i) for i, n in enumerate(names)})
        _mat(mirror / "cars_annos.mat",
             {"relative_im_path": names, "class": classes, "test": [0, 1, 0, 1, 0, 1]})
    else:
        train, test = (["00001.jpg", "00002.jpg", "00003.jpg"],
                       ["00001.jpg", "00002.jpg", "00003.jpg"])
        make_tar(mirror / "cars_train.tgz",
                 {f"cars_train/{n}": jpeg(i) for i, n in enumerate(train)})
        make_tar(mirror / "cars_test.tgz",
                 {f"cars_test/{n}": jpeg(9 + i) for i, n in enumerate(test)})
        _mat(tmp_path / "cars_train_annos.mat", {"fname": train, "class": classes[:3]})
        make_tar(mirror / "car_devkit.tgz",
                 {"devkit/cars_train_annos.mat": (tmp_path / "cars_train_annos.mat").read_bytes()})
        _mat(mirror / "cars_test_annos_withlabels.mat", {"fname": test, "class": classes[3:]})
    root = tmp_path / "d"
    assert fetch_cars196.main(["--root", str(root), "--mirror", str(mirror)]) == 0, \
        capsys.readouterr().err
    assert "train: 2 classes, 3 images; test: 2 classes, 3 images" in capsys.readouterr().out
    assert sorted(Cars196(root, "test").targets.tolist()) == [99, 99, 196]


def test_cars_incomplete_mirror_is_explained(tmp_path, capsys):
    (tmp_path / "cars_train.tgz").write_bytes(b"")
    assert fetch_cars196.main(["--root", str(tmp_path / "d"), "--mirror", str(tmp_path)]) == 1
    assert "expected either" in capsys.readouterr().err


def test_random_resized_crop_and_the_evaluation_view(tmp_path, cub_archive):
    """D&C's official augmentation as a setting, and the un-augmented view of the training
    images that its clustering reads (``cluster_images="evaluation"``)."""
    from torchvision import transforms as T

    from bierlib.data.files import paper_transforms

    root = tmp_path / "data"
    assert fetch_cub200.main(["--root", str(root), "--archive", str(cub_archive)]) == 0
    train = CUB200(root, "train", augmentation="random-resized-crop")
    assert isinstance(train.transform.transforms[0], T.RandomResizedCrop)
    view = train.evaluation_view()
    assert view.paths == train.paths and torch.equal(view.targets, train.targets)
    assert torch.equal(view[0][0], view[0][0])  # deterministic, unlike train[0]
    assert isinstance(train.transform.transforms[0], T.RandomResizedCrop)  # train untouched
    with pytest.raises(ValueError, match="augmentation must be one of"):
        paper_transforms(True, augmentation="mixup")
