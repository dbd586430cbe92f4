"""Quiz of notebook 1, the ELBO: the gap, what maximising over q does, the CVAE's KL, the one-sample ELBO."""

from .questions import MultipleChoice, Numeric, Trap, right, wrong

IDENTITY = "3. The bound as an identity"
CVAE_BOUND = "4. The conditional VAE bound"
CHECK = "7. The check"
DIAGONAL = "9. Maximising the ELBO over $q$"

QUESTIONS = (
    MultipleChoice(
        r"The gap $\log p(y \mid x) - \text{ELBO}$ is which KL divergence?",
        (
            wrong(
                r"$\mathrm{KL}(q(z \mid x,y) \Vert p(z \mid x))$",
                "That is the KL *inside* the ELBO, to the prior network, computed in training. "
                "The gap is a KL to another distribution: keep the two apart.",
                see=CVAE_BOUND,
            ),
            right(
                r"$\mathrm{KL}(q(z \mid x,y) \Vert p(z \mid x,y))$",
                "The identity of section 3, given $x$: the gap is the KL from $q$ to the *true posterior*. "
                "Section 7's table shows it for six $q$'s: the gap column equals the KL column.",
            ),
            wrong(
                r"$\mathrm{KL}(p(z \mid x,y) \Vert q(z \mid x,y))$",
                "The direction is reversed. Section 3 writes $\\log p(y \\mid x)$ as an expectation under $q$, "
                "so the gap is an expectation under $q$: $\\mathrm{KL}(q \\Vert \\text{posterior})$. "
                "Exercise 4 prints both directions for the best $q$: 0.1103 (the gap) and 0.1365.",
            ),
            wrong(
                "Zero, once $q$ is the best diagonal Gaussian",
                "The best diagonal $q$ still leaves 0.1103 nats: it cannot tilt with a correlated posterior.",
                see=DIAGONAL,
            ),
        ),
        see=IDENTITY,
    ),
    MultipleChoice(
        r"Keep the prior and generation networks fixed and maximise the ELBO over the recognition network $q$ "
        "alone. What does that do?",
        (
            wrong(
                r"It raises $\log p(y \mid x)$",
                r"$\log p(y \mid x)$ does not depend on $q$: in section 7's table it is -4.1460 for every $q$. "
                "Only the parameters of the prior and generation networks can raise it.",
            ),
            right(
                r"It shrinks $\mathrm{KL}(q \Vert \text{posterior})$: approximate posterior inference",
                r"As $\log p(y \mid x)$ = ELBO + gap and the left side does not move, every nat the ELBO gains "
                "comes out of the gap: in section 9, from 86.7 to 0.116 nats in 400 Adam steps.",
            ),
            wrong(
                r"It drives $\mathrm{KL}(q(z \mid x,y) \Vert p(z \mid x))$ to zero",
                r"That KL is zero for $q = p(z \mid x)$, a $q$ that ignores $y$: exercise 3 gives it an ELBO of "
                "-16.5442, a gap of 12.3982 nats. The ELBO trades this KL against the reconstruction term.",
                see="Exercises",
            ),
            wrong(
                "It makes the bound tight, whatever the family of $q$",
                "Only if the family of $q$ contains the posterior. The diagonal Gaussian of section 9 does not: "
                "the gap stops at 0.116 nats.",
                see=DIAGONAL,
            ),
        ),
        see=IDENTITY,
    ),
    MultipleChoice(
        r"Why does the CVAE bound hold a KL to the prior network $p(z \mid x)$, and not to $\mathcal{N}(0, I)$?",
        (
            right(
                r"The model's joint is $p(y, z \mid x) = p(y \mid x, z)\,p(z \mid x)$: its prior enters the weight $w$",
                "The chain rule decides which KL appears: the bound is on *this* model's "
                r"$\log p(y \mid x)$, whose codes come from $p(z \mid x)$.",
            ),
            wrong(
                r"With $\mathcal{N}(0, I)$ the KL would have no closed form",
                r"It has one: $\mathcal{N}(0, I)$ is a diagonal Gaussian like $p(z \mid x)$, and the same formula "
                r"gives the KL (exercise 2 uses it: its ELBO, -8.691, bounds the fixed-prior model's -8.043).",
                see="Exercises",
            ),
            wrong(
                "The prior network must see $y$ to be useful",
                r"The prior network sees $x$ only; the recognition network $q(z \mid x, y)$ is the one that sees $y$.",
            ),
            wrong(
                "By convention: any Gaussian could stand in the KL",
                r"Change the Gaussian and you bound another model's likelihood: -8.691 (KL to $\mathcal{N}(0, I)$) "
                "is not a bound on our model in general, only by chance here.",
                see="Exercises",
            ),
        ),
        see=CVAE_BOUND,
    ),
    MultipleChoice(
        r"`cu.cvae_terms` estimates the ELBO with **one** code per example for its term "
        r"$\mathbb{E}_q[\log p(y \mid x,z)]$. Averaged over 2000 codes per example the estimate is -90.8458 "
        "± 0.0283, the closed-form ELBO -90.8665. "
        "What does that show?",
        (
            right(
                "The one-sample estimate is noisy but unbiased",
                "Its average lies within 3 standard errors of the closed form (printed: True). Training uses one "
                "code per example and lets the noise average out over the steps.",
            ),
            wrong(
                "One code per example is biased: the average misses the closed form",
                "The difference is within the noise that 2000 codes per example leave: within 3 standard errors, "
                "as section 8's check prints. No bias is detectable.",
            ),
            wrong(
                "The bound is tight for this $q$",
                r"This is the initial $q$: its ELBO, -90.8665, lies 86.7205 nats below $\log p(y \mid x)$ = -4.1460. "
                "The check is about the estimator, not about the gap.",
                see=CHECK,
            ),
            wrong(
                r"One code suffices because $q$ is a point mass",
                r"$q$ is a Gaussian with a learned variance; $z = \mu_q + \sigma_q \odot \epsilon$ varies with "
                r"$\epsilon$, which is why the estimate is noisy.",
            ),
        ),
        see="8. The Monte Carlo ELBO",
    ),
    Numeric(
        r"In section 7's table the recognition network 'best, variances x4' has $\log p(y \mid x)$ = -4.1460 and "
        r"ELBO = -5.8700. What is its $\mathrm{KL}(q(z \mid x,y) \Vert p(z \mid x,y))$, in nats?",
        answer=1.724,
        tolerance=0.002,
        feedback=r"The gap is the KL to the true posterior: -4.1460 - (-5.8700) = 1.7240, as the KL column prints.",
        hint="Use the identity of section 3: log p(y|x) = ELBO + KL(q || posterior).",
        see=IDENTITY,
        traps=(
            Trap(-1.724, "A KL is never negative: the ELBO lies *below* $\\log p(y \\mid x)$, so subtract the ELBO."),
            Trap(-10.016, "You added the two; the KL is their difference, log p(y|x) minus the ELBO."),
            Trap(10.016, "You added the two; the KL is their difference, log p(y|x) minus the ELBO."),
        ),
    ),
)
