"""The demo's folders: made with their lock held, removed by a later demo once that lock is free."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.synchronize import Event
from pathlib import Path

from esm.demo.workdir import LOCK_NAME, DemoWorkdir, folder_line, open_demo_folder, remove_old_workdirs


def test_a_new_folder_holds_its_lock_under_its_final_name(tmp_path: Path) -> None:
    folder = DemoWorkdir.create(tmp_path)
    try:
        assert folder.path.parent == tmp_path
        assert folder.path.name.startswith("esm-demo-")
        assert (folder.path / LOCK_NAME).is_file()
        assert [p.name for p in tmp_path.iterdir()] == [folder.path.name]  # no staging folder left
        assert remove_old_workdirs(tmp_path) == []  # locked: a running demo's
    finally:
        folder.release()


def test_ended_demos_folders_are_removed_and_nothing_else(tmp_path: Path) -> None:
    ended = [DemoWorkdir.create(tmp_path) for _ in range(2)]
    for folder in ended:
        (folder.path / "daemon.log").write_text("...")
        folder.release()
    current = DemoWorkdir.create(tmp_path)
    not_ours = tmp_path / "esm-demo-by-hand"  # no lock file: made by someone else
    not_ours.mkdir()
    other_name = tmp_path / "unrelated"
    other_name.mkdir()
    (other_name / LOCK_NAME).touch()
    try:
        removed = remove_old_workdirs(tmp_path, keep=current.path)
        assert sorted(removed) == sorted(folder.path for folder in ended)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [current.path.name, "esm-demo-by-hand", "unrelated"]
        )
    finally:
        current.release()


def hold_a_demo_folder(base: Path, made: multiprocessing.Queue[str], done: Event) -> None:
    folder = DemoWorkdir.create(base)
    made.put(str(folder.path))
    done.wait(30)


def test_a_folder_another_running_demo_holds_is_left_alone(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    made: multiprocessing.Queue[str] = context.Queue()
    done = context.Event()
    other = context.Process(target=hold_a_demo_folder, args=(tmp_path, made, done))
    other.start()
    try:
        running = Path(made.get(timeout=30))
        assert remove_old_workdirs(tmp_path) == []
        assert running.is_dir()
    finally:
        done.set()
        other.join(30)
    assert remove_old_workdirs(tmp_path) == [running]  # its process ended: the lock went with it


def test_a_symbolic_link_named_like_a_demo_folder_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / LOCK_NAME).touch()
    os.symlink(target, tmp_path / "esm-demo-link")
    assert remove_old_workdirs(tmp_path) == []
    assert (target / LOCK_NAME).exists()


def test_the_demo_says_where_its_folder_is_and_what_became_of_older_ones(tmp_path: Path) -> None:
    here = tmp_path / "esm-demo-abc"
    assert folder_line(here, [tmp_path / "a", tmp_path / "b"], keep_old=False) == (
        f"esm demo: logs, config and store go to {here}/, left there for you to read; the next demo "
        "removes it unless run with --keep-old (removed 2 older demo folders)"
    )
    assert folder_line(here, [], keep_old=True).endswith("(older demo folders kept (--keep-old))")
    assert folder_line(here, [], keep_old=False).endswith("(no older demo folder to remove)")


def ended_demo_folder(base: Path) -> Path:
    folder = DemoWorkdir.create(base)
    folder.release()
    return folder.path


def test_opening_a_demo_folder_removes_the_ended_ones(tmp_path: Path) -> None:
    older = ended_demo_folder(tmp_path)
    folder, line = open_demo_folder(tmp_path, keep_old=False)
    folder.release()
    assert not older.exists()
    assert folder.path.is_dir()
    assert line.endswith("(removed 1 older demo folder)")


def test_keep_old_keeps_them(tmp_path: Path) -> None:
    older = ended_demo_folder(tmp_path)
    folder, line = open_demo_folder(tmp_path, keep_old=True)
    folder.release()
    assert older.is_dir()
    assert line.endswith("(older demo folders kept (--keep-old))")
