"""``train_fashion_cnn``: the Keras CNN on Fashion-MNIST, measured per epoch by carbon-kfp."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from .._kit import gpu_kit_component


@gpu_kit_component
def train_fashion_cnn(
    train_data: Input[Dataset],
    model: Output[Model],
    kpi_co2: Output[Metrics],
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 0.001,
    validation_split: float = 0.1,
    seed: int = 42,
    max_train_samples: int = 0,
    conv1_filters: int = 32,
    conv2_filters: int = 64,
    dense_units: int = 128,
    budget_kg: float = 0.0,
    compare: str = "codecarbon,carbontracker",
    project_name: str = "fashion-mnist",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> None:
    """Fits the CNN (:mod:`carbon_kfp.fashion.model`) inside ``track`` and saves it as ``.keras``.

    Every epoch goes to the tracker's epoch API through ``CarbonCallback``: after the first one
    the record predicts the emissions of all ``epochs``, and with a ``budget_kg`` training stops
    early when the prediction exceeds it (the step still succeeds; ``model.metadata`` says so).

    Args:
        train_data: ``.npz`` from ``load_fashion_mnist``.
        model: Output folder holding ``model.keras``. Metadata: ``framework`` (``keras``),
            ``framework_version``, ``backend``, ``model_file``, ``class_names``, the
            hyperparameters, ``train_images`` / ``validation_images``, ``epochs_completed``,
            ``stopped_by_budget`` and the last epoch's ``accuracy`` / ``val_accuracy``.
        kpi_co2: Energy/CO2 of the fit (DESIGN §3 keys, ``predicted_emissions_kg`` and one
            ``<backend>_emissions_kg`` per ``compare`` backend; JSON record at its path).
        epochs: Passes over the training images (the article: 10).
        batch_size: Images per gradient step (the article: 64).
        learning_rate: Adam's learning rate (the article: 0.001).
        validation_split: Share of the (shuffled) training images held out for validation,
            in [0, 1).
        seed: Seed of the shuffle, the sample and Keras's initialisation.
        max_train_samples: Train on this many images drawn with ``seed``; ``0`` uses all.
        conv1_filters: Filters of the first convolution (the article: 32).
        conv2_filters: Filters of the second convolution (the article: 64).
        dense_units: Units of the hidden Dense layer (the article: 128).
        budget_kg: Stop training when the predicted emissions of all ``epochs`` exceed this
            many kg CO2eq; ``0`` means no budget.
        compare: Comma-separated comparison backends measuring the same fit (``codecarbon``,
            ``carbontracker``); ``""`` turns the comparison off. Each needs its package in the
            image (the GPU image carries both).
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record.
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Region the step runs in (grid intensity of that region); ``""`` leaves
            the location to the tracker defaults.

    Raises:
        ValueError: a hyperparameter out of range, or ``train_data`` that is not
            ``load_fashion_mnist`` output.
        carbon_kfp.ConfigError: an unknown ``compare`` backend or one whose package is missing,
            before training starts.
    """
    import os
    from pathlib import Path

    from carbon_kfp.fashion import data
    from carbon_kfp.fashion import model as cnn

    if epochs < 1:
        raise ValueError(f"epochs={epochs}: expected at least 1")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split={validation_split}: expected a share in [0, 1)")
    if budget_kg < 0:
        raise ValueError(f"budget_kg={budget_kg}: expected 0 (no budget) or a positive mass")

    keras = cnn.import_keras()  # before anything imports keras: sets the backend

    from carbon_kfp.integrations.keras import CarbonCallback
    from carbon_kfp.kfp import track

    images, labels = data.read_split(Path(train_data.path))
    chosen = cnn.select_training(labels, max_samples=max_train_samples, seed=seed)
    inputs, targets = cnn.to_inputs(images[chosen]), labels[chosen]
    keras.utils.set_random_seed(seed)
    network = cnn.build_model(
        keras,
        conv1_filters=conv1_filters,
        conv2_filters=conv2_filters,
        dense_units=dense_units,
        learning_rate=learning_rate,
    )
    with track(
        kpi_co2,
        compare=[name.strip() for name in compare.split(",") if name.strip()],
        epochs=epochs,
        budget_kg=budget_kg or None,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ) as tracker:
        callback = CarbonCallback(tracker, stop_on_budget=True)
        history = network.fit(
            inputs,
            targets,
            epochs=epochs,
            batch_size=batch_size,
            validation_split=validation_split,
            callbacks=[callback],
            verbose=2,
        )

    fitted = int(len(chosen) * (1.0 - validation_split))  # Keras's split: the last share validates
    epochs_completed = len(history.history["loss"])  # fewer when the budget stopped training
    os.makedirs(model.path, exist_ok=True)
    model_file = os.path.join(model.path, "model.keras")
    tmp = os.path.join(model.path, ".model.tmp.keras")  # Keras insists on the extension
    network.save(tmp)
    os.replace(tmp, model_file)  # a reader never sees half a model
    last = {key: round(float(values[-1]), 6) for key, values in history.history.items()}
    model.metadata.update(
        {
            "framework": "keras",
            "framework_version": keras.__version__,
            "backend": keras.backend.backend(),
            "model_file": "model.keras",
            "class_names": list(cnn.CLASS_NAMES),
            "epochs": epochs,
            "epochs_completed": epochs_completed,
            "stopped_by_budget": callback.budget_exceeded is not None,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "validation_split": validation_split,
            "seed": seed,
            "conv1_filters": conv1_filters,
            "conv2_filters": conv2_filters,
            "dense_units": dense_units,
            "train_images": fitted,
            "validation_images": len(chosen) - fitted,
            **{k: v for k, v in last.items() if k in ("accuracy", "val_accuracy")},
        }
    )
    print(
        f"trained on {fitted} images ({len(chosen) - fitted} for validation) for "
        f"{epochs_completed}/{epochs} epochs ({keras.backend.backend()} backend): {last}"
    )
