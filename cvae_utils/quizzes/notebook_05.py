"""Quiz of notebook 5, training: reading the history, the KL's rise, warm-up, the tightness of the bound."""

from .questions import MultipleChoice, right, wrong

NUMBERS = "What each number means"
TIGHT = "9. How tight is the bound?"

QUESTIONS = (
    MultipleChoice(
        "After epoch 1 the train loss is 208.48, the test loss 152.79. How can the test loss be the lower one?",
        (
            right(
                "The train number averages over the epoch while the weights change; the test number comes after it",
                "Early batches of epoch 1 met an almost untrained model, and their losses enter the train average. "
                "The test set is scored with the weights at the end of the epoch.",
            ),
            wrong(
                "The model overfits",
                "Overfitting shows the other way: a test loss rising above a falling train loss. Here the test loss "
                "falls in every one of the 20 epochs.",
                see="4. The curves",
            ),
            wrong(
                "The test loss leaves out the KL",
                "The test numbers always include the KL with weight 1: test loss 152.79 = recon 143.75 + KL 9.04.",
            ),
            wrong(
                "The test loss uses the mean of $q$ instead of a sampled $z$",
                "`cu.evaluate` draws one $z$ per example, as training does.",
            ),
        ),
        see=NUMBERS,
    ),
    MultipleChoice(
        "Over the 20 epochs the test KL rises from 9.04 to 20.81 nats. Is that a problem?",
        (
            right(
                "No: the KL is a cost that buys cheaper reconstruction; judge the run by the ELBO",
                "The reconstruction term fell from 143.75 to 78.56 meanwhile, far more than the KL rose: the test "
                "ELBO improved from -152.79 to -99.37.",
            ),
            wrong(
                "Yes: the model is overfitting",
                "The test loss falls in every epoch; no test curve turns up.",
                see="4. The curves",
            ),
            wrong(
                "Yes: a good model drives the KL to 0",
                r"A KL near 0 means $q(z \mid x,y) \approx p(z \mid x)$ for every image: posterior collapse, a "
                "$z$ that carries nothing.",
                see="5. Two options of `cu.fit`",
            ),
            wrong(
                "No: the KL is not part of the ELBO",
                "It is: elbo = -(recon + kl). A larger KL lowers the ELBO unless the reconstruction gains more.",
            ),
        ),
        see=NUMBERS,
    ),
    MultipleChoice(
        r"A run with KL warm-up (`kl_warmup_epochs=3`) shows train loss 228.68 but train ELBO -235.77 in its first "
        "epoch. On what do you compare it with a run without warm-up?",
        (
            right(
                "On the test ELBO, which always weighs the KL by 1",
                r"While $\beta < 1$ the train loss, recon + $\beta$ KL, is not $-$ELBO: it leaves part of the KL "
                "out. The test numbers are computed with $\\beta = 1$ after each epoch.",
            ),
            wrong(
                "On the train loss, which was minimised",
                r"During warm-up the train loss weighs the KL by $\beta < 1$, so it looks better than the bound: "
                "228.68 against an ELBO of -235.77.",
            ),
            wrong(
                "On the train KL alone",
                "The KL is a cost, not a score: compare the bound, which counts both the KL and the reconstruction.",
                see=NUMBERS,
            ),
            wrong(
                "On the test KL alone",
                "The KL is a cost, not a score: compare the bound, which counts both the KL and the reconstruction.",
                see=NUMBERS,
            ),
        ),
        see="5. Two options of `cu.fit`",
    ),
    MultipleChoice(
        r"On the first 500 test images the ELBO is -97.37, the importance-sampled $\log p(y \mid x)$ "
        "with $S$ = 100 is -93.91. Which statement is right?",
        (
            right(
                r"The ELBO undersells the model by at least 3.46 nats (on average)",
                r"The importance-sampled estimate is itself a lower bound on average, so $\log p(y \mid x)$ lies "
                "above -93.91, and the ELBO further below it.",
            ),
            wrong(
                r"The estimate is an upper bound, so $\log p(y \mid x)$ lies between the two",
                r"By Jensen's inequality the log of the average weight is a lower bound on average, tightening "
                "as $S$ grows.",
            ),
            wrong(
                "The gap of 3.46 nats is the KL to the prior network",
                r"The gap between the ELBO and $\log p(y \mid x)$ is the KL from $q$ to the *true posterior* "
                r"$p(z \mid x, y)$, not to the prior $p(z \mid x)$.",
            ),
            wrong(
                "With $S$ = 1 the estimate would average the same -93.91",
                "With one sample its expectation is exactly the ELBO; it rises with $S$.",
            ),
        ),
        see=TIGHT,
    ),
    MultipleChoice(
        "Why does `cu.evaluate_log_likelihood` average the importance weights in log space (logsumexp)?",
        (
            right(
                "The weights lie near $e^{-100}$; below about $e^{-104}$ float32 gives exactly 0, "
                "and $\\log 0 = -\\infty$",
                "For 176 of the 500 images the average weight is exactly 0 in float32. Logsumexp never forms "
                "the tiny weights themselves.",
            ),
            wrong(
                "It is faster",
                "Speed is not the point: in float32 `torch.exp` of a log-weight near -104 is exactly 0.",
            ),
            wrong(
                "Because importance weights can be negative",
                r"A weight $p(y \mid x,z)\,p(z \mid x) / q(z \mid x,y)$ is a ratio of densities: never negative.",
            ),
            wrong(
                "To make the estimate an unbiased estimate of $\\log p(y \\mid x)$",
                "Logsumexp computes the same number as the log of the average weight, only without underflow; the "
                "estimate stays a lower bound on average.",
            ),
        ),
        see=TIGHT,
    ),
)
