"""Quiz of notebook 4, the loss: the KL's direction, the sum over pixels, the MSE loss, collapse, the GSNN."""

from .questions import MultipleChoice, Numeric, Trap, right, wrong

KL = "1. The KL divergence between two diagonal Gaussians"
SUM = "3. The reconstruction term: a sum over pixels"
MSE = "5. Why the sum over pixels matters"

QUESTIONS = (
    MultipleChoice(
        r"For a wide $q = \mathcal{N}(0, 1)$ and a narrower $p = \mathcal{N}(1, 0.5^2)$, "
        r"$\mathrm{KL}(q \Vert p)$ = 2.8069 nats but $\mathrm{KL}(p \Vert q)$ = 0.8181. Why is the first larger?",
        (
            right(
                "Samples of the wide $q$ often land in the thin tails of $p$, where $\\log p$ is very negative",
                r"$\mathrm{KL}(q \Vert p)$ averages $\log q - \log p$ under $q$. In the CVAE this punishes codes "
                "of $q$ where the prior network, which we sample at test time, has little density.",
            ),
            wrong(
                "One of the two values is a numerical error",
                "Both are checked three ways: closed form, `torch.distributions` and the area under the integrand "
                "(printed: True). The KL is simply not symmetric.",
            ),
            wrong(
                r"Because $p$ is wider than $q$",
                r"$p$ is the *narrower* one ($\sigma_p$ = 0.5). A narrow $p$ makes $\mathrm{KL}(q \Vert p)$ steep.",
            ),
            wrong(
                "With more samples the two would agree",
                "These are closed forms, not estimates; and the two directions measure different things.",
            ),
        ),
        see=KL,
    ),
    Numeric(
        "An untrained model's per-pixel loss, from `F.binary_cross_entropy_with_logits` with its default "
        "`reduction='mean'`, is 0.6969 nats. What is the reconstruction term of the loss, "
        r"$-\log p(y \mid x, z)$, in nats per example, for 28×28 images?",
        answer=546.4,
        tolerance=0.6,
        feedback="Summed over the 784 pixels: 784 × 0.6969 ≈ 546.4 nats per example, as printed. The bound needs "
        "the log-probability of the whole image, the sum.",
        hint="The default reduction averages over the pixels; the bound needs their sum.",
        see=SUM,
        traps=(
            Trap(0.6969, "That is the mean over the pixels, 784 times too small for the bound."),
            Trap(-546.4, "The sign: the loss's reconstruction term is minus a log-likelihood, so it is positive."),
            Trap(543.4, "Close: that is 784 $\\log 2$, for logits exactly 0. Use the printed per-pixel value."),
        ),
    ),
    MultipleChoice(
        "The starting model's loss is the pixel-**mean** squared error plus $M_N$ (batch size / dataset size) times "
        "the KL. Trained at batch 512 on 60,000 images, which objective is it, up to a constant factor?",
        (
            right(
                r"The $-$ELBO of a Gaussian decoder with $\sigma_y$ = 1.83, on pixels in [0, 1]",
                r"Times 784 it is SSE + $784\,M_N$ KL, and $2\sigma_y^2 = 784\,M_N$ = 6.69 gives $\sigma_y$ = 1.83: "
                "a decoder that claims huge pixel noise, so a nat of KL outweighs any gain in reconstruction.",
            ),
            wrong(
                r"The $-$ELBO of a Gaussian decoder with $\sigma_y$ = 0.13, the ELBO-trained model's RMS error",
                r"That decoder would weigh the KL $2\sigma_y^2$ = 0.034, 200 times less than the MSE loss's 6.69.",
            ),
            wrong(
                "The $-$ELBO of a Bernoulli decoder",
                "A squared error comes from a Gaussian log-density, not a Bernoulli one.",
            ),
            wrong(
                "Exactly the $-$ELBO of this notebook: the pixel mean and $M_N$ only rescale it",
                "Only the **summed** squared error is, and with a KL weight of $2\\sigma_y^2$. The mean over 784 "
                "pixels and $M_N$ change the weight, and the weight decides what the model learns.",
            ),
        ),
        see=MSE,
    ),
    MultipleChoice(
        "Trained with the MSE loss, the model's test KL stayed between 0.06 and 0.13 nats (the ELBO-trained "
        "model's: 18.85). What happened?",
        (
            right(
                r"Posterior collapse: $q(z \mid x, y) \approx p(z \mid x)$, so $z$ carries almost nothing",
                "The decoder learned to ignore $z$: its samples are one blurry average image per digit, and the "
                "label alone decides the digit.",
                see="Samples per digit",
            ),
            wrong(
                "Its optimiser failed",
                "By its own objective, SSE + 6.69 KL, it wins: 41.79 against 139.25 for the ELBO-trained model.",
                see="The final scores",
            ),
            wrong(
                "It encodes the images more efficiently, in fewer nats",
                "It encodes almost nothing: its pixel MSE is worse too, 0.0523 against 0.0168.",
                see="The final scores",
            ),
            wrong(
                "It ignores the label",
                "The label goes straight into the generation network and still works: each digit is drawn. "
                "It is $z$ that is ignored.",
                see="Samples per digit",
            ),
        ),
        see=MSE,
    ),
    MultipleChoice(
        "On a test batch, for the ELBO-trained model, the GSNN loss is 315.148, the CVAE loss 108.152 "
        "(recon 89.574 + KL 18.579), though the GSNN "
        "loss has no KL term. Why is it so much higher?",
        (
            right(
                "A code from the prior network knows only the label, so it reconstructs *this* image much worse",
                r"The CVAE's $z$ comes from $q(z \mid x, y)$, which has seen the image. The KL it pays, 18.579 "
                "nats, is far less than the reconstruction it gains.",
            ),
            wrong(
                "The GSNN objective is not a bound on $\\log p(y \\mid x)$",
                r"It is one, by Jensen's inequality: $\mathbb{E}_p[\log p(y \mid x,z)] \le \log p(y \mid x)$; "
                "usually a looser one.",
            ),
            wrong(
                "The GSNN loss counts the KL twice",
                r"It has no KL at all: it is the ELBO with $q$ set to the prior network, whose KL to itself is 0.",
            ),
            wrong(
                r"Because $\alpha$ = 0.5",
                r"$\alpha$ belongs to the hybrid; the GSNN loss is the hybrid at $\alpha$ = 0.0 (printed: 315.148).",
            ),
        ),
        see="6. Two more objectives",
    ),
)
