"""Quiz of notebook 6, conditional sampling: what sampling uses, style transfer, temperature, the two priors."""

from .questions import MultipleChoice, right, wrong

QUESTIONS = (
    MultipleChoice(
        r"`model.sample` draws $z = \mu_p(x) + T\,\sigma_p(x) \odot \varepsilon$ and decodes it. Which of the "
        "three networks does it **not** use?",
        (
            right(
                r"The recognition network $q(z \mid x, y)$",
                "There is no image $y$ to encode when we generate: $q$ serves in training only.",
            ),
            wrong(
                r"The prior network $p(z \mid x)$",
                r"It gives $\mu_p(x)$ and $\sigma_p(x)$, the Gaussian from which $z$ is drawn.",
            ),
            wrong(
                r"The generation network $p(y \mid x, z)$",
                "It turns $(z, x)$ into one Bernoulli logit per pixel, whose sigmoid is the image shown.",
            ),
            wrong(
                "None: all three are needed",
                "The recognition network needs the image $y$, which sampling does not have.",
            ),
        ),
        see="2. How `model.sample` draws a digit",
    ),
    MultipleChoice(
        r"Decoded with each of the ten labels, a real digit's $\mu_q$ is read as the label given only 22.6% of the "
        r"time (ignoring the label would score one in ten); transferring "
        r"$\varepsilon = (\mu_q - \mu_p(x)) / \sigma_p(x)$ instead obeys the label (section 5's grid). "
        r"Why does decoding $\mu_q$ fail?",
        (
            right(
                r"With the learned prior, $z$ itself says which digit it is, and the decoder reads the digit from $z$",
                "Each digit's prior sits in its own place, so $\\mu_q$ lies in the source digit's region. "
                "$\\varepsilon$ is the position *relative* to the prior, which carries over to another label.",
            ),
            wrong(
                r"$\mu_q$ is too noisy to decode",
                r"Decoded with its own label, $\mu_q$ gives the reconstruction: sharp and right.",
            ),
            wrong(
                "The classifier misreads the decodings",
                "It reads 0.991 of real test digits right, and the $\\varepsilon$ transfers as the labels asked for.",
                see="9. Does the model draw the digit we ask for?",
            ),
            wrong(
                "The temperature is 1",
                "No temperature enters: $\\mu_q$ is decoded as it is.",
            ),
        ),
        see="5. Style transfer from a real digit",
    ),
    MultipleChoice(
        "At temperature $T$ = 0 every sample is classified as the digit asked for (accuracy 1.0 in exercise 1). "
        "Which temperature samples the distribution the model learned?",
        (
            right(
                "$T$ = 1 only",
                r"$T$ scales the prior's spread; only $T = 1$ draws from $p(z \mid x)$ as trained, odd shapes "
                "included. At $T$ = 0 every $z$ is the prior mean: copies of one prototype, diversity 0.0.",
            ),
            wrong(
                "$T$ = 0, the most accurate",
                "Accuracy checks content only: copies of one perfect prototype score 1.0. Their diversity is 0.0: "
                "it does not sample, it repeats.",
            ),
            wrong(
                "$T$ = 0.5, clean and typical digits",
                "Clean, but narrower than what the model learned: the quality-versus-diversity trade-off, not "
                "the trained distribution.",
            ),
            wrong(
                "Any $T$: the temperature only changes the image's contrast",
                r"It changes $z$: $z = \mu_p(x) + T\,\sigma_p(x)\,\varepsilon$. Higher $T$ gives more broken "
                "shapes (accuracy 0.707 at 2.0).",
                see="Exercises",
            ),
        ),
        see="6. Temperature",
    ),
    MultipleChoice(
        r"Decoded with each of the ten labels, 22.6% of the learned-prior model's codes show the label given, "
        r"but 98.4% of the fixed-$\mathcal{N}(0, I)$ model's. "
        r"Why does the fixed prior make the generation network read $x$?",
        (
            right(
                "With one prior for every digit, carrying the digit in $z$ costs KL, while the label input is free",
                "So $z$ keeps the style and $x$ decides the digit. A learned prior sits where each label's codes "
                "are, so there $z$ carries the digit for free.",
            ),
            wrong(
                "The fixed-prior model has the better bound",
                "Its bound is nearly the same, slightly lower: test ELBO -92.97 against -92.55.",
            ),
            wrong(
                "The fixed-prior model was trained longer or differently",
                "Nothing else changed: `label_cvae_fixed_prior` is `label_cvae` with $\\mathcal{N}(0, I)$ in place "
                "of the prior network.",
            ),
            wrong(
                "A fixed prior puts more nats into $z$",
                "Both put about as many nats into $z$ (their latent usage); what differs is *what* $z$ carries: "
                "style, or style and digit.",
            ),
        ),
        see="10. Learned or fixed prior?",
    ),
    MultipleChoice(
        "`label_cvae_hybrid`, trained with the hybrid objective, draws the digit asked for almost always (1.000), "
        "yet its Fréchet distance is 718.0 against the CVAE's 39.0. What went wrong?",
        (
            right(
                "Every prior code decodes to one blurred prototype per label: right digit, no variety",
                "Its GSNN half asks for each image from a code that knows only the label; the best answer is the "
                "label's average image.",
            ),
            wrong(
                "Its samples are noise",
                "Noise would not be read as the right digit 1.000 of the time by both referees.",
            ),
            wrong(
                "The Fréchet distance measures accuracy",
                "It compares the spread of the samples' features with that of real digits: alike or unrealistic "
                "samples score high, real training digits 8.5.",
                see="9. Does the model draw the digit we ask for?",
            ),
            wrong(
                "Its bound is much better, so its samples are too sharp",
                "Its CVAE bound is *worse*, -98.70 against -92.55.",
            ),
        ),
        see="11. The paper's remedy",
    ),
)
