"""Quiz of notebook 7, structured output: the mask, the blurred baseline, the GSNN, the test measure."""

from .questions import MultipleChoice, Numeric, Trap, right, wrong

TEST_MEASURE = "5. The test measure"

QUESTIONS = (
    Numeric(
        "With one quadrant observed (the bottom-left), how many pixels of each 28×28 image does the likelihood count?",
        answer=588,
        tolerance=0.4,
        feedback="The three unobserved quadrants, 3 × 196 = 588: the mask is True on the target pixels only, "
        "the ones to predict.",
        hint="The likelihood counts only the pixels to predict: those of the quadrants that are not observed.",
        see="1. The task",
        traps=(
            Trap(784, "That is the whole image. The observed quadrant is given, not predicted: the mask leaves it out"),
            Trap(196, "That is one quadrant, the observed one. The likelihood counts the pixels to *predict*."),
            Trap(392, "That is half the image, the target with *two* quadrants observed."),
        ),
    ),
    MultipleChoice(
        "The baseline, a deterministic network trained with the Bernoulli loss on the target pixels, draws "
        "blurred completions. Why?",
        (
            right(
                "Its loss is minimised by each pixel's average over the digits that could continue $x$",
                r"The loss is linear in $y_j$, so over the possible completions it is minimised at "
                r"$\hat y_j = \bar y_j$: the average, a blur wherever those digits disagree.",
            ),
            wrong(
                "It is too small a network",
                "More capacity would not help: one prediction per input can only hedge between the plausible "
                "completions, and the hedge that minimises the loss is their average.",
            ),
            wrong(
                "A Bernoulli likelihood cannot produce sharp images",
                "The CVAE uses the same likelihood and draws sharp completions: its $z$ picks one completion.",
                see="8. Figure 3",
            ),
            wrong(
                "Early stopping ended its training too soon",
                "The blur is what the loss asks for, not a lack of training: the best deterministic prediction is "
                "the average.",
            ),
        ),
        see="2. The baseline, and why it blurs",
    ),
    MultipleChoice(
        "The GSNN trains on codes from its prior network, as at test time. Its completions of an input differ by "
        "0.001 per target pixel, the CVAE's by 0.080. Why?",
        (
            right(
                "Trained only on prior codes, it learned to ignore $z$: a second deterministic network",
                "A prior code knows only $x$, so the best use of it is none: the GSNN predicts the average, like the "
                "baseline, and its NLL (98.9) lies next to the baseline's (103.0).",
            ),
            wrong(
                "Its recognition network was never trained",
                r"True, but irrelevant here: completions draw $z$ from the prior network, for every model.",
            ),
            wrong(
                "Its completions are averaged over many codes",
                "The diversity measure is the spread across completions of the same input, not their average.",
            ),
            wrong(
                "With one quadrant observed there is only one plausible completion",
                "The CVAE's completions of the same inputs differ (0.080), and include 4s and 9s for one quadrant.",
                see="8. Figure 3",
            ),
        ),
        see="9. How diverse are the completions?",
    ),
    MultipleChoice(
        r"The test measure estimates $\log p(y \mid x)$ by importance sampling with the recognition network "
        r"$q(z \mid x, y)$ as the proposal. Why not draw $z$ from the prior $p(z \mid x)$?",
        (
            right(
                "$q$ has seen $y$ and proposes the few $z$ that explain it, so the weights vary little",
                "Exercise 1: with $S$ = 1 the prior proposal gives -191.49, $q$ gives -67.37 nats; the prior needs "
                "far more samples to find the codes that matter.",
            ),
            wrong(
                "The prior cannot be sampled",
                "It can: `model.sample` draws from it. It is a poor proposal, as prior draws seldom explain $y$.",
            ),
            wrong(
                r"With $q$ the estimate is an upper bound on $\log p(y \mid x)$",
                "With any proposal the log of the average weight is a lower bound on average; $q$ makes it tighter.",
            ),
            wrong(
                "Because with the prior as proposal the estimate equals the GSNN objective",
                r"The GSNN objective averages $\log p(y \mid x,z)$; the estimate averages the weights, then takes "
                "the log, which tends to $\\log p(y \\mid x)$ with either proposal as $S$ grows. $q$ gets there "
                "with far fewer samples.",
            ),
        ),
        see=TEST_MEASURE,
    ),
    MultipleChoice(
        r"For the 1-quadrant CVAE, the GSNN term $-\mathbb{E}_{p(z \mid x)}[\log p(y \mid x,z)]$ is 182.62 nats. "
        r"Is that its NLL, $-\log p(y \mid x)$?",
        (
            right(
                "No: it over-states the NLL",
                r"By Jensen's inequality $\log \mathbb{E}_p[p(y \mid x,z)] \ge \mathbb{E}_p[\log p(y \mid x,z)]$: "
                "averaging log-probabilities gives less than the log of the average probability. The "
                "importance-sampled NLL of the shipped CVAE is 66.33.",
            ),
            wrong(
                r"Yes: averaging over $z \sim p(z \mid x)$ is the definition of $p(y \mid x)$",
                "The definition averages the *probabilities* $p(y \\mid x, z)$, then takes the log. This averages "
                "the log-probabilities, which Jensen's inequality puts below.",
            ),
            wrong(
                "No: it under-states the NLL",
                r"The other way round: $\mathbb{E}_p[\log p(y \mid x,z)] \le \log p(y \mid x)$, so its negative "
                "is at least the NLL.",
            ),
            wrong(
                "Yes, up to sampling noise (the hybrid row prints 185.8)",
                "185.8 against 182.62 is sampling noise, but both are the GSNN term, not the NLL.",
            ),
        ),
        see="4. Three objectives for the same networks",
    ),
)
