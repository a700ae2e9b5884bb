"""Train width variants of the digits CNN, for `dnnhw rank`: the same network and training as
`train.py` with 2, 4 and 16 channels in the first conv (the bundled digits.onnx has 8), written
to variants/digits_w{2,4,16}.onnx. Deterministic (byte-identical files on re-running).

Re-run from the repository root with:  .venv/bin/python examples/digits/variants.py
"""
import train

WIDTHS = (2, 4, 16)


def main():
    for width in WIDTHS:
        train.train_and_export(train.HERE / "variants" / f"digits_w{width}.onnx", width)


if __name__ == "__main__":
    main()
