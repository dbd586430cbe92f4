"""Quiz of notebook 3, the decoder: the sum over pixels, blur, densities, grey levels, what the decoder reads."""

from .questions import MultipleChoice, Numeric, Trap, right, wrong

SCORING = "Scoring predictions of real digits"

QUESTIONS = (
    MultipleChoice(
        r"Why is $\log p(y \mid x, z)$ a **sum** over the pixels?",
        (
            right(
                r"The pixels are independent given $z$ and $x$: $p(y \mid x,z)$ is a product, its log a sum",
                "The decoder outputs one number per pixel, and a per-pixel distribution scores each pixel; the log "
                "of the product of the 784 probabilities is the sum of their logs.",
            ),
            wrong(
                "A sum and a mean over the pixels are interchangeable: only the scale differs",
                "The mean is not the log-probability of the whole image; and the scale matters, since the bound "
                "weighs the reconstruction term against the KL nat for nat (notebook 4 trains a model with a mean).",
            ),
            wrong(
                "Because the Bernoulli needs binary pixels",
                "The sum comes from independence, whatever the per-pixel distribution: the Gaussian's "
                "log-likelihood is a sum over the pixels too.",
                see="The two log-likelihoods, by hand",
            ),
            wrong(
                "Because the decoder outputs one number per image",
                "It outputs one number per pixel, a logit or a mean: `decode` returns shape (4, 1, 28, 28) for "
                "4 codes.",
                see="The generation network, built by hand",
            ),
        ),
        see="Where the decoder sits in the bound",
    ),
    MultipleChoice(
        "Scoring the test digits, the Bernoulli likelihood ranks *its class average* (-163.4) far above *a wrong "
        "digit* (-630.8). What does that predict for a decoder trained by maximum likelihood?",
        (
            right(
                "Where it is unsure, it draws blurry strokes: a hedge",
                "A smear loses a little on every uncertain pixel; a sharp wrong digit loses a lot wherever it is "
                "confidently wrong.",
            ),
            wrong(
                "It draws sharp digits and sometimes the wrong one",
                "A confidently wrong digit is what the likelihood punishes most (-630.8): maximum likelihood "
                "avoids it.",
            ),
            wrong(
                "It draws flat grey when unsure",
                "Flat grey scores -543.4, far below the class average: the likelihood prefers a blur that follows "
                "the likely strokes.",
            ),
            wrong(
                "Nothing: the likelihood does not shape what the decoder draws",
                "Training maximises exactly this likelihood, so its preferences become the decoder's.",
            ),
        ),
        see=SCORING,
    ),
    MultipleChoice(
        r"The Gaussian likelihood ($\sigma_y = 0.1$) gives the perfect prediction +1084.8 nats. How can a "
        "log-likelihood be positive?",
        (
            right(
                "It is the log of a *density*, which can exceed 1",
                "A Bernoulli term is the log of a probability, at most 0; a narrow Gaussian's density exceeds 1 "
                "near its mean, so its log is positive.",
            ),
            wrong(
                "It cannot: this is a bug",
                "Only log-*probabilities* are at most 0. The library's value is checked against the formula "
                "by hand (printed: True).",
            ),
            wrong(
                r"Because $\sigma_y$ is too large",
                r"The opposite: the smaller $\sigma_y$, the higher the density at the mean, and the higher the "
                "score of a perfect prediction.",
            ),
            wrong(
                "It shows that the Gaussian model beats the Bernoulli one (-45.3)",
                "Never compare Bernoulli with Gaussian scores: one is a log-probability, the other a log-density.",
            ),
        ),
        see=SCORING,
    ),
    MultipleChoice(
        r"The perfect Bernoulli prediction $\rho = y$ scores -44.69 nats per digit, not 0. Why?",
        (
            right(
                r"MNIST pixels are grey levels; for a grey $y$ the best score is $-H(y) < 0$",
                "The Bernoulli formula with a grey target is a cross-entropy, largest at $\\rho = y$ with value "
                "minus the entropy. On binarised digits the best score is 0.00 (printed).",
            ),
            wrong(
                "Because of the clamp that keeps the logits finite",
                "The clamp costs a little more (-45.3), but -44.69 is the score *without* it.",
            ),
            wrong(
                "Because the decoder is untrained",
                r"No decoder is involved: the prediction is the target $y$ itself.",
            ),
            wrong(
                "Floating-point rounding",
                "Rounding errors are far below a nat; 44.69 nats come from the grey levels, about 0.175 of the "
                "pixels (printed).",
            ),
        ),
        see="Grey levels under a Bernoulli",
    ),
    MultipleChoice(
        "The trained decoder decodes the same $z$ with each of the ten labels. Pixels vary by 0.023 across a row's "
        "ten labels, by 0.089 across the four codes. Where does it read the digit from?",
        (
            right(
                "Mostly from $z$",
                r"$q(z \mid x, y)$ sees the image and can put the class into $z$; the learned prior gives each label "
                "its own region (means 3.7 to 15.0 apart), so that costs little KL.",
            ),
            wrong(
                "Mostly from the label $x$",
                "Then each row would run through the digits 0 to 9 and vary more across a row (0.023) than across "
                "the codes (0.089). It is the other way round.",
            ),
            wrong(
                "Equally from both",
                "The label changes the pixels about four times less than the code does.",
            ),
            wrong(
                "From neither: it draws the average digit",
                "Each row shows its code's digit, different between rows: the code decides.",
            ),
        ),
        see="Does the trained decoder read the label?",
    ),
    Numeric(
        r"An untrained decoder outputs logits near 0, that is $\rho \approx 0.5$ for each of the $D$ = 784 pixels. "
        "About what log-likelihood does that give a digit, in nats?",
        answer=-543.4,
        tolerance=5.0,  # the untrained model's printed -547.2 counts as right too
        feedback=r"$-D \log 2$ = -543.4 nats: about $\log 2$ lost on each pixel. The untrained decoder "
        "scores -547.2 (printed).",
        hint=r"Each pixel costs $\log 2$ nats at $\rho = 0.5$, whatever its grey level; add them up.",
        see="An untrained decoder draws grey noise",
        traps=(
            Trap(543.4, "The sign: a log-probability of a coin flip is negative, $\\log 0.5 < 0$."),
            Trap(-0.693, "That is one pixel. The log-likelihood of the digit sums over all its pixels."),
            Trap(-784, "That is in bits ($\\log_2$). The series measures in nats, natural logarithms."),
        ),
    ),
)
