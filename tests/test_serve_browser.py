"""The try-it page at `/` in a real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

For fill-mask, text classification, token classification and question answering: type into the page, submit,
and read what it rendered (ranked labels with score bars, highlighted entity spans, the answer span), compared
with the pipeline called directly. Loopback only; the browser runs with a fresh profile and every background fetch turned off.
`bash dev.sh test` installs chromium and chromium-driver with apt-get where they are missing.
"""
from __future__ import annotations

import shutil
import tempfile

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'roberta[serve]'")
pytest.importorskip("selenium", reason="selenium is not installed (it is in roberta[test])")

from test_serve_app import FILL, QA, TEXTS, serve_models, uvicorn_thread  # noqa: E402,F401

from roberta.pipelines import pipeline  # noqa: E402
from roberta.serve.app import create_app  # noqa: E402

pytestmark = [pytest.mark.xdist_group("serve"), pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless browser test needs Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; `bash dev.sh test` installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="roberta-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def type_and_submit(driver, url, text, context=None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    wait = WebDriverWait(driver, 60)
    wait.until(ready.element_to_be_clickable((By.ID, "submit")))  # enabled once /info answered
    driver.find_element(By.ID, "text").send_keys(text)
    if context is not None:
        driver.find_element(By.ID, "context").send_keys(context)
    driver.find_element(By.ID, "submit").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#result > *"))
    assert not driver.find_elements(By.CSS_SELECTOR, "#result .error"), driver.find_element(By.ID, "result").text
    return driver.find_element(By.ID, "result")


def test_fill_mask_page_ranks_the_candidates_with_score_bars(browser):
    from selenium.webdriver.common.by import By

    expected = pipeline("fill-mask", device="cpu")(FILL[0], top_k=5)
    with uvicorn_thread(create_app("fill-mask", device="cpu")) as url:
        result = type_and_submit(browser, url, FILL[0])
        rows = result.find_elements(By.CSS_SELECTOR, ".row")
        labels = [row.find_element(By.CLASS_NAME, "label").text for row in rows]
        scores = [float(row.find_element(By.CLASS_NAME, "score").text) for row in rows]
        widths = [row.find_element(By.CSS_SELECTOR, ".bar > div").value_of_css_property("width") for row in rows]
        full = rows[0].find_element(By.CLASS_NAME, "bar").value_of_css_property("width")
    assert browser.find_element(By.ID, "task").text == "fill-mask"
    assert labels == [c["token_str"].strip() for c in expected]  # the page shows the text; HTML trims its edges
    assert scores == pytest.approx([c["score"] for c in expected], abs=1e-4)
    # each bar is as long as its score: computed widths in px, over the full bar's width
    assert [float(w.removesuffix("px")) / float(full.removesuffix("px")) for w in widths] == pytest.approx(
        [c["score"] for c in expected], abs=0.01)


def test_text_classification_page_ranks_every_label_with_score_bars(browser, serve_models):
    from selenium.webdriver.common.by import By

    folder = serve_models["text-classification"]
    expected = pipeline("text-classification", model=folder, device="cpu")(TEXTS[1], top_k=None)
    with uvicorn_thread(create_app("text-classification", folder, device="cpu")) as url:
        result = type_and_submit(browser, url, TEXTS[1])
        rows = result.find_elements(By.CSS_SELECTOR, ".row")
        labels = [row.find_element(By.CLASS_NAME, "label").text for row in rows]
        scores = [float(row.find_element(By.CLASS_NAME, "score").text) for row in rows]
    assert len(expected) == 3 and labels == [c["label"] for c in expected]  # all 3 labels, best first
    assert scores == pytest.approx([c["score"] for c in expected], abs=1e-4)


def test_token_classification_page_highlights_the_entity_spans(browser, serve_models):
    from selenium.webdriver.common.by import By

    folder = serve_models["token-classification"]
    text = TEXTS[3]
    entities = pipeline("token-classification", model=folder, device="cpu")(text, aggregation_strategy="simple")
    assert entities, "the tiny random model found no entity to draw"
    with uvicorn_thread(create_app("token-classification", folder, device="cpu")) as url:
        result = type_and_submit(browser, url, text)
        shown = browser.execute_script(
            "return [...document.querySelectorAll('#result mark.span')]"
            ".map(m => [m.firstChild.textContent, m.querySelector('.tag').textContent])")
        plain = browser.execute_script(  # the whole text as drawn, without the tags
            "const box = document.querySelector('#result .text').cloneNode(true);"
            "box.querySelectorAll('.tag, .empty').forEach(t => t.remove()); return box.textContent")
    assert shown == [[text[e["start"]:e["end"]], e["entity_group"]] for e in sorted(entities, key=lambda e: e["start"])]
    assert plain == text


def test_question_answering_page_marks_the_answer_in_the_context(browser, serve_models):
    from selenium.webdriver.common.by import By

    folder = serve_models["question-answering"]
    expected = pipeline("question-answering", model=folder, device="cpu")(QA[0])
    with uvicorn_thread(create_app("question-answering", folder, device="cpu")) as url:
        result = type_and_submit(browser, url, QA[0]["question"], context=QA[0]["context"])
        answer = result.find_element(By.CLASS_NAME, "answer").get_attribute("textContent")
        marked = result.find_element(By.CSS_SELECTOR, "mark.span").get_attribute("textContent")
        score = result.find_element(By.CLASS_NAME, "score").text
    assert answer == expected["answer"]
    assert marked == QA[0]["context"][expected["start"]:expected["end"]]
    assert score == f"score {expected['score']:.4f}"
