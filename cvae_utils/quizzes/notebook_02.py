"""Quiz of notebook 2, the encoders: their inputs, the log-variance, the two priors, the reparameterisation."""

from .questions import MultipleChoice, Numeric, Trap, right, wrong

RECOGNITION = "The recognition network $q(z \\mid x, y)$, by hand"
REPARAMETERISATION = "The reparameterisation trick"
PRIORS = "A fixed $\\mathcal{N}(0, I)$ prior, or a learned one"

QUESTIONS = (
    Numeric(
        r"The recognition network $q(z \mid x, y)$ of this notebook reads a 28×28 image $y$ and a digit label "
        "$x$ (ten classes). How many numbers go into its first layer?",
        answer=794,
        tolerance=0.4,
        feedback="The flattened image and the one-hot label, concatenated: `[y, one-hot x]` has shape (8, 794) "
        "for our 8 digits.",
        hint="Flatten the image, encode the label one-hot, and concatenate the two.",
        see=RECOGNITION,
        traps=(
            Trap(784, "That is the image alone. $q$ also sees the condition $x$, as a one-hot vector."),
            Trap(785, "The label enters one-hot, one number per class, not as a single number 0 to 9."),
            Trap(40, "That is the *output*: a mean and a log-variance for each latent dimension."),
            Trap(20, "That is `z_dim`, the size of each output half; the question asks for the inputs."),
        ),
    ),
    MultipleChoice(
        r"Why does an encoder output $\log \sigma^2$ rather than $\sigma$?",
        (
            right(
                r"Every real number is a valid log-variance, while $\sigma$ must be positive",
                r"A linear layer can output any real number; $\sigma = \exp(\tfrac12 \text{logvar})$ is positive "
                "whatever it outputs. An untrained network even starts near $\\sigma = 1$: printed, "
                "sigma in [0.92, 1.10].",
            ),
            wrong(
                r"So that $\sigma$ stays below 1, as the KL requires",
                r"The KL accepts any positive $\sigma$, and a logvar of 2.0 gives $\sigma$ = 2.718 (printed). "
                "The reason is validity: a raw output can be negative.",
            ),
            wrong(
                r"So that the network can output $\sigma = 0$ exactly",
                r"$\sigma = 0$ needs $\log \sigma^2 = -\infty$, which no network outputs; and a zero-width "
                "Gaussian is no density. The log-variance makes every output a valid, positive $\\sigma$.",
            ),
            wrong(
                "Because `torch.distributions.Normal` takes a log-variance",
                "It takes the standard deviation $\\sigma$ (its `scale`). The reasons: any output is valid, scaling "
                "$\\sigma$ becomes adding to logvar, the formulas are written in it, and training starts near "
                "$\\sigma = 1$.",
            ),
        ),
        see="Why a log-variance?",
    ),
    MultipleChoice(
        "Two test digits carry the same label (our indices 2 and 5, both 1s). Which encoder gives them the same "
        "Gaussian?",
        (
            right(
                r"The prior network $p(z \mid x)$ only",
                r"It sees only the one-hot label, so a label CVAE has exactly ten priors (printed: same prior True, "
                r"same recognition False).",
            ),
            wrong(
                "Both encoders",
                r"The recognition network $q(z \mid x, y)$ also sees the image $y$, and the two images differ.",
            ),
            wrong(
                r"The recognition network $q(z \mid x, y)$ only",
                r"It is the other way round: $q$ sees the image, which differs; the prior sees the label, which "
                "does not.",
            ),
            wrong(
                "Neither: the networks hold random weights",
                "Random weights are still a function: the same input gives the same output. The prior's input, the "
                "one-hot label, is the same for both.",
            ),
        ),
        see="The prior network $p(z \\mid x)$, by hand",
    ),
    MultipleChoice(
        "In the trained learned-prior model, $q$'s KL to its own label's prior averages 19.2 nats, its KL to "
        r"$\mathcal{N}(0, I)$ 50.6. Would a model trained with a fixed $\mathcal{N}(0, I)$ prior pay about 50.6 nats?",
        (
            wrong(
                "Yes: 50.6 is what the fixed prior costs",
                r"These $q$'s were trained towards the learned priors, never towards $\mathcal{N}(0, I)$. A model "
                "trained with the fixed prior learns other $q$'s, close to its prior.",
            ),
            right(
                "No: these $q$'s were never trained towards $\\mathcal{N}(0, I)$",
                "The 50.6 measures these codes against a prior they never saw. A fixed-prior twin trained from "
                "scratch reaches nearly the same bound; notebook 6 trains it.",
            ),
            wrong(
                "No: it would pay nothing, since $\\mathcal{N}(0, I)$ has no parameters",
                "The KL term stays in the bound whatever the prior; with a fixed prior it pulls every $q$ towards "
                "the same Gaussian, and carrying the label in $z$ costs KL.",
            ),
            wrong(
                "Yes, plus the 19.2 of the learned prior",
                "The two numbers compare the same $q$'s with two different priors; they do not add up to anything.",
            ),
        ),
        see="What a trained learned prior looks like",
    ),
    MultipleChoice(
        r"What goes wrong if training draws $z$ with `torch.normal(mu, std)`?",
        (
            right(
                "Nothing is reported, and $q$ never learns from the reconstruction term",
                "`torch.normal` has a `grad_fn` (NormalBackward3), but PyTorch defines its gradient as zero "
                "(printed: all zero True). No error, no learning.",
            ),
            wrong(
                "An error is raised: the sample is cut off from the graph",
                "No error comes: the tensor of `torch.normal` has a `grad_fn` (NormalBackward3), unlike that of "
                "`Normal(mu, std).sample()` (printed: requires_grad = False). Its gradient is simply zero.",
            ),
            wrong(
                "The gradient is right but noisier, like the score function's",
                "PyTorch does not apply the score function: it defines the gradient of `torch.normal` as zero.",
            ),
            wrong(
                "Nothing: it is what `rsample` does",
                r"`rsample` builds $z = \mu + \sigma \odot \epsilon$, differentiable in $\mu$ and $\sigma$ (checked "
                "equal to `model.reparameterize`). `torch.normal` does not.",
            ),
        ),
        see=REPARAMETERISATION,
    ),
    MultipleChoice(
        "On the 1-D problem the score-function estimator's variance is 21.75 times the reparameterised one in "
        "theory, 21.2 to 24.5 times measured. Why is it so much larger?",
        (
            right(
                r"It uses only the values $f(z)$, times a zero-mean noise, not the slope of $f$",
                "Add a constant to $f$: the gradient does not change, but the score function's variance grows with "
                "the constant squared. The reparameterisation uses the slope at each sample.",
            ),
            wrong(
                "It is biased, and the bias adds to its error",
                "Both are unbiased: every mean lies within a few standard errors of -4 (at $S$ = 1000: -3.999 and "
                "-4.002).",
            ),
            wrong(
                "It needs more samples: at large $S$ the ratio shrinks",
                "Both variances fall like $1/S$, so the ratio stays: 21.9 at $S$ = 1000.",
                see="Measuring the gradient variance on a 1-D problem",
            ),
            wrong(
                "The reparameterised estimate is the exact gradient, with no variance",
                "It is an estimate too, with variance 4 per sample: measured 3.95305 at $S$ = 1.",
                see="Measuring the gradient variance on a 1-D problem",
            ),
        ),
        see="Why the gap",
    ),
)
